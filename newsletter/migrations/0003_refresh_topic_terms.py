from django.db import migrations

from newsletter.topic_catalogue import TOPICS, term_list


def refresh(apps, schema_editor):
    """Bring the seeded topics' terms up to date with the catalogue (efficient
    inference learned "cheaper", "small devices", ...); topics admins added stay."""
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


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0002_seed_topics")]
    operations = [migrations.RunPython(refresh, migrations.RunPython.noop)]
