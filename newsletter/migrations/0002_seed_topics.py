from django.db import migrations

from newsletter.topic_catalogue import TOPICS, seed_topics


def seed(apps, schema_editor):
    seed_topics(apps.get_model("newsletter", "Topic"))


def unseed(apps, schema_editor):
    apps.get_model("newsletter", "Topic").objects.filter(slug__in=[t[0] for t in TOPICS]).delete()


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
