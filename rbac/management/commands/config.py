"""``harborpy config``: read and change the system settings an admin sets at run time.

    harborpy config get [KEY]
    harborpy config set KEY VALUE

Settings:
    project_creation_restriction   everyone (default): any logged-in user may create
                                   projects; adminonly: only system admins may
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import SYSTEM
from rbac.bindings import setting_set
from rbac.policy import PROJECT_CREATION, PROJECT_CREATION_CHOICES, project_creation_restriction

# Each setting: how to read its value, and the values it may take.
SETTINGS: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    PROJECT_CREATION: (project_creation_restriction, PROJECT_CREATION_CHOICES),
}


def _known(key: str) -> tuple[Callable[[], Any], tuple[str, ...]]:
    if key not in SETTINGS:
        raise CommandError(f"unknown setting {key!r}; settings are {', '.join(SETTINGS)}")
    return SETTINGS[key]


class Command(BaseCommand):
    help = "Read and change system settings."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        get = actions.add_parser("get", help="show a setting (all of them without KEY)")
        get.add_argument("key", nargs="?")
        change = actions.add_parser("set", help="change a setting")
        change.add_argument("key")
        change.add_argument("value")

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["key"]
        if options["action"] == "get":
            for name in [key] if key else list(SETTINGS):
                read, _ = _known(name)
                self.stdout.write(f"{name} {read()}" if not key else str(read()))
            return
        read, choices = _known(key)
        value = options["value"]
        if value not in choices:
            raise CommandError(f"invalid value {value!r} for {key}; use {' or '.join(choices)}")
        if read() != value:  # setting it again would only add an audit entry
            setting_set(key=key, value=value, actor=SYSTEM)
        self.stdout.write(f"{key} {value}")
