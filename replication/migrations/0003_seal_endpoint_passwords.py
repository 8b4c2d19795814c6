"""Registry endpoint passwords were stored as given; seal them (rbac.sealing)."""

from django.db import migrations, models

from rbac.sealing import seal

SEALED = "sealed:"
PURPOSE = "registry-password"


def seal_passwords(apps, schema_editor):
    endpoint_model = apps.get_model("replication", "RegistryEndpoint")
    for endpoint in endpoint_model.objects.exclude(password="").exclude(
        password__startswith=SEALED
    ):
        endpoint.password = SEALED + seal(PURPOSE, endpoint.password)
        endpoint.save(update_fields=["password"])


class Migration(migrations.Migration):
    dependencies = [
        ("replication", "0002_triggers_deletion_labels"),
    ]

    operations = [
        # A sealed password is longer than the one given: no length limit to overflow.
        migrations.AlterField(
            model_name="registryendpoint",
            name="password",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(seal_passwords, migrations.RunPython.noop),
    ]
