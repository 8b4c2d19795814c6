"""``harborpy bootstrap``: migrations, the token signing key, the system admin, and the
folders of the filesystem job queue when there is no Redis.

``harborpy serve`` runs it before serving.  The admin's password comes from
HARBORPY_ADMIN_PASSWORD; when that is unset a password is generated and printed
here, once.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from rbac.services import ADMIN, admin_bootstrap
from rbac.tokens import signing_key


class Command(BaseCommand):
    help = "Apply migrations and create the system admin if there is none."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        signing_key()  # generated into the data folder on first start
        queue_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if key in queue_options:  # the filesystem broker needs its folders to exist
                os.makedirs(str(queue_options[key]), exist_ok=True)
        generated = admin_bootstrap(password=settings.HARBORPY_ADMIN_PASSWORD)
        if generated:
            self.stdout.write(
                f"Created the system admin {ADMIN!r} with the password {generated}\n"
                "It is shown only this once: keep it, or set HARBORPY_ADMIN_PASSWORD."
            )
