"""``harborpy gc``: collect garbage now, against the configured database and storage.

    harborpy gc [--dry-run] [--untagged] [--grace SECONDS]

Progress goes to stderr, ending with a summary line.  Exit status 0 when the
run succeeded, 1 when it failed, 75 (EX_TEMPFAIL) when another garbage
collection holds the lock.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.gc import GCLocked, gc_run
from distribution.models import GCStatus

EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Delete unreferenced blobs, abandoned uploads and (with --untagged) untagged manifests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would be freed, change nothing"
        )
        parser.add_argument(
            "--untagged",
            action="store_true",
            help="delete untagged manifests first (not index children, not referrers of kept ones)",
        )
        parser.add_argument(
            "--grace",
            type=int,
            metavar="SECONDS",
            help="spare blobs and manifests used this recently (default HARBORPY_GC_GRACE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        grace = options["grace"]
        if grace is not None and grace < 0:
            raise CommandError("--grace cannot be negative")

        def progress(line: str) -> None:
            self.stderr.write(line)
            self.stderr.flush()

        try:
            run = gc_run(
                dry_run=options["dry_run"],
                untagged=options["untagged"],
                grace=grace,
                progress=progress,
            )
        except GCLocked as error:
            raise CommandError(str(error), returncode=EX_TEMPFAIL) from None
        if run.status != GCStatus.SUCCEEDED:
            raise CommandError(f"garbage collection {run.pk} failed; see its log")
