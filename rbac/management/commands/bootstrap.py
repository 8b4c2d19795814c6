"""``harborpy bootstrap``: migrations, the token signing key and the system admin.

``harborpy serve`` runs it before serving.  The admin's password comes from
HARBORPY_ADMIN_PASSWORD; when that is unset a password is generated and printed
here, once.
"""

from __future__ import annotations

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
        generated = admin_bootstrap(password=settings.HARBORPY_ADMIN_PASSWORD)
        if generated:
            self.stdout.write(
                f"Created the system admin {ADMIN!r} with the password {generated}\n"
                "It is shown only this once: keep it, or set HARBORPY_ADMIN_PASSWORD."
            )
