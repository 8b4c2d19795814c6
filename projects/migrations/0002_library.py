"""The public ``library`` project exists from the start."""

from django.db import migrations


def create_library(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    Project.objects.get_or_create(name="library", defaults={"public": True})


class Migration(migrations.Migration):
    dependencies = [("projects", "0001_initial")]

    operations = [migrations.RunPython(create_library, migrations.RunPython.noop)]
