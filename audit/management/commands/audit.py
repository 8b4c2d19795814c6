"""``harborpy audit``: check and read the tamper-evident audit log.

harborpy audit verify          exit 0 if every link holds, 1 at the first broken one
harborpy audit tail [-n N]     the newest entries
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.models import AuditEntry
from audit.selectors import audit_verify


class Command(BaseCommand):
    help = "Verify or read the audit log."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("verify", help="check every link of the hash chain")
        tail = actions.add_parser("tail", help="show the newest entries")
        tail.add_argument("-n", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "tail":
            newest = list(AuditEntry.objects.order_by("-id")[: options["n"]])
            for entry in reversed(newest):
                self.stdout.write(f"#{entry.id} {entry}  from {entry.source or '-'}")
            return
        check = audit_verify()
        if check.intact:
            self.stdout.write(f"audit log intact: {check.entries} entries")
            return
        where = (
            f"entry #{check.broken_at.id} ({check.broken_at})"
            if check.broken_at
            else f"after entry {check.entries}"
        )
        self.stderr.write(
            f"audit log broken at {where}: {check.reason}; "
            f"the {check.entries} entries before it are intact"
        )
        raise SystemExit(1)
