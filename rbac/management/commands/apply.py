"""``harborpy apply``: make projects and role bindings match a file.

    harborpy apply -f FILE [--dry-run]      (-f - reads standard input)

Prints each change on a line of its own, then how many were made.  Runs as the
system itself (a system admin, audited as ``system``), on a database that
``harborpy serve`` or ``harborpy bootstrap`` has set up.  docs/apply.md
describes the file.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import SYSTEM
from rbac.apply import documents_apply, documents_parse, system_principal
from rbac.exceptions import ApplyError


class Command(BaseCommand):
    help = "Make projects and their role bindings match a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-f", "--filename", required=True, help="the YAML file, or - for standard input"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="show the changes without making them"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["filename"]
        try:
            if source == "-":
                text = sys.stdin.read()
            else:
                with open(source, encoding="utf-8") as fh:
                    text = fh.read()
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {source}: {error}") from None
        name = "<stdin>" if source == "-" else source
        try:
            changes = documents_apply(
                documents=documents_parse(text),
                principal=system_principal(),
                actor=SYSTEM,
                dry_run=options["dry_run"],
            )
        except ApplyError as error:
            raise CommandError("\n".join(f"{name}: {p}" for p in error.problems)) from None
        for change in changes:
            self.stdout.write(change.text)
        count = f"{len(changes)} change{'' if len(changes) == 1 else 's'}"
        if not changes:
            self.stdout.write("no changes")
        elif options["dry_run"]:
            self.stdout.write(f"{count} (dry run, nothing written)")
        else:
            self.stdout.write(f"{count} applied")
