from django.db import migrations

from newsletter.topic_catalogue import seed_topics


def refresh(apps, schema_editor):
    """Bring the seeded topics' terms up to date with the catalogue (efficient
    inference learned "cheaper", "small devices", ...); topics admins added stay."""
    seed_topics(apps.get_model("newsletter", "Topic"))


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0002_seed_topics")]
    operations = [migrations.RunPython(refresh, migrations.RunPython.noop)]
