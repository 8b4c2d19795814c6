"""``harborpy retention run PROJECT [--dry-run]``: apply a project's retention policy now.

Prints each retained and deleted tag (and deleted manifest), then a summary.
Exit status 0 when the run succeeded, 1 otherwise (no such project, no policy).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from distribution.retention import retention_policy_get, retention_run
from projects.models import Project


class Command(BaseCommand):
    help = "Tag retention: apply a project's policy (run PROJECT [--dry-run])."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        run = sub.add_parser("run", help="apply the project's retention policy now")
        run.add_argument("project", help="project name")
        run.add_argument(
            "--dry-run", action="store_true", help="report what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']!r}")
        policy = retention_policy_get(project=project)
        if policy is None:
            raise CommandError(f"project {project.name!r} has no retention policy")

        def progress(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        retention_run(
            policy=policy,
            dry_run=options["dry_run"],
            actor=Actor("cli", "local"),
            progress=progress,
        )
