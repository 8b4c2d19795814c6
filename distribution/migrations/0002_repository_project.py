"""Every repository belongs to the project its name starts with."""

import django.db.models.deletion
from django.db import migrations, models


def assign_projects(apps, schema_editor):
    Project = apps.get_model("projects", "Project")
    Repository = apps.get_model("distribution", "Repository")
    for repository in Repository.objects.filter(project__isnull=True):
        first = repository.name.split("/", 1)[0]
        repository.project, _ = Project.objects.get_or_create(name=first)
        repository.save(update_fields=["project"])


class Migration(migrations.Migration):
    dependencies = [
        ("distribution", "0001_initial"),
        ("projects", "0002_library"),
    ]

    operations = [
        migrations.AddField(
            model_name="repository",
            name="project",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="repositories",
                to="projects.project",
            ),
        ),
        migrations.RunPython(assign_projects, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="repository",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="repositories",
                to="projects.project",
            ),
        ),
    ]
