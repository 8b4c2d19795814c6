"""``harborpy audit``: check and read the tamper-evident audit log.

harborpy audit verify          exit 0 if every link holds, 1 at the first broken one
harborpy audit tail [-n N]     the newest entries
harborpy audit purge --older-than-hours N [--operations push,pull] [--dry-run]
                               delete old entries (log rotation), keeping the chain verifiable

A purge prints its progress (a line per batch) to stderr, ending with a
summary; exit 0 when it succeeded, 1 when it failed or was asked wrongly, 75
(EX_TEMPFAIL) when another purge is pending or running.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.exceptions import PurgeBusy, PurgeInvalid
from audit.models import AuditEntry, PurgeStatus
from audit.rotation import audit_purge_run
from audit.selectors import audit_verify
from audit.services import Actor

EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Verify or read the audit log."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("verify", help="check every link of the hash chain")
        tail = actions.add_parser("tail", help="show the newest entries")
        tail.add_argument("-n", type=int, default=20)
        purge = actions.add_parser("purge", help="delete entries older than a retention")
        purge.add_argument(
            "--older-than-hours",
            type=int,
            required=True,
            metavar="N",
            help="delete entries recorded more than N hours ago",
        )
        purge.add_argument(
            "--operations",
            default="",
            metavar="ACTIONS",
            help="only these actions, comma-separated (push,pull,...); default: every action",
        )
        purge.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "tail":
            newest = list(AuditEntry.objects.order_by("-id")[: options["n"]])
            for entry in reversed(newest):
                self.stdout.write(f"#{entry.id} {entry}  from {entry.source or '-'}")
            return
        if options["action"] == "purge":
            self._purge(options)
            return
        check = audit_verify()
        if check.intact:
            purged = f", {check.purged} removed by recorded purges" if check.purged else ""
            self.stdout.write(f"audit log intact: {check.entries} entries{purged}")
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

    def _purge(self, options: dict[str, Any]) -> None:
        def progress(line: str) -> None:
            self.stderr.write(line)
            self.stderr.flush()

        try:
            run = audit_purge_run(
                retention_hour=options["older_than_hours"],
                operations=options["operations"],
                dry_run=options["dry_run"],
                actor=Actor("cli", "local"),  # as harborpy retention run records itself
                progress=progress,
            )
        except PurgeInvalid as error:
            raise CommandError(str(error)) from None
        except PurgeBusy as error:
            raise CommandError(str(error), returncode=EX_TEMPFAIL) from None
        if run.status != PurgeStatus.SUCCEEDED:
            raise CommandError(f"audit purge {run.pk} failed; see its log")
