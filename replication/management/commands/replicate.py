"""``harborpy replicate POLICY``: run a replication policy now, in this process.

Progress goes to stderr, one line per tag, ending with a summary.  Exit status
0 when the execution succeeded, 1 when it failed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from replication.models import ReplicationPolicy, Status
from replication.services import PolicyDisabled, execution_create, execution_run


class Command(BaseCommand):
    help = "Run a replication policy now and wait for it to finish."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("policy", help="the replication policy's name")

    def handle(self, *args: Any, **options: Any) -> None:
        policy = ReplicationPolicy.objects.filter(name=options["policy"]).first()
        if policy is None:
            raise CommandError(f"no replication policy named {options['policy']!r}")

        def progress(line: str) -> None:
            self.stderr.write(line)
            self.stderr.flush()

        try:
            execution = execution_create(policy=policy)
        except PolicyDisabled as error:
            raise CommandError(str(error)) from None
        execution = execution_run(execution_id=execution.pk, progress=progress)
        self.stdout.write(f"execution {execution.pk} {execution.status}")
        if execution.status != Status.SUCCEEDED:
            raise CommandError(f"replication execution {execution.pk} failed")
