from django.db import migrations

# Seeds the catalogue kept in newsletter/topic_catalogue.py. update_or_create keys on
# the slug, so a later migration can run the same seed again after the list grows.
from newsletter.topic_catalogue import TOPICS, term_list


def seed(apps, schema_editor):
    Topic = apps.get_model("newsletter", "Topic")
    for position, (slug, name, area, description, terms) in enumerate(TOPICS):
        Topic.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "area": area,
                "description": description,
                "terms": "\n".join(term_list(terms)),
                "position": position,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("newsletter", "Topic").objects.filter(slug__in=[t[0] for t in TOPICS]).delete()


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
