"""``harborpy project``: create, change and list projects from the command line.

    harborpy project create NAME [--public] [--quota SIZE]
    harborpy project set NAME [--public | --private] [--quota SIZE | --no-quota]
    harborpy project list

SIZE is bytes or a number with K, M, G or T (binary units).
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.selectors import project_usage
from projects.exceptions import ProjectError
from projects.selectors import project_get, project_list
from projects.services import project_create, project_update
from projects.sizes import SizeInvalid, size_format, size_parse


def parse_size(text: str) -> int:
    try:
        return size_parse(text)
    except SizeInvalid as error:
        raise CommandError(str(error)) from None


class Command(BaseCommand):
    help = "Create, change and list projects."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a project")
        create.add_argument("name")
        create.add_argument("--public", action="store_true", help="anyone may pull")
        create.add_argument("--quota", type=parse_size, help="storage quota (e.g. 10G)")
        change = actions.add_parser("set", help="change a project")
        change.add_argument("name")
        visibility = change.add_mutually_exclusive_group()
        visibility.add_argument("--public", dest="public", action="store_true", default=None)
        visibility.add_argument("--private", dest="public", action="store_false")
        quota = change.add_mutually_exclusive_group()
        quota.add_argument("--quota", type=parse_size)
        quota.add_argument("--no-quota", action="store_true")
        actions.add_parser("list", help="list projects with their usage")

    def handle(self, *args: Any, **options: Any) -> None:
        # Usable before the first `harborpy serve`, which is what applies migrations.
        call_command("migrate", interactive=False, verbosity=0)
        try:
            getattr(self, f"_{options['action']}")(options)
        except ProjectError as error:
            raise CommandError(str(error)) from None

    def _create(self, options: dict[str, Any]) -> None:
        project = project_create(
            name=options["name"], public=options["public"], quota_bytes=options["quota"]
        )
        self.stdout.write(f"created project {project.name}")

    def _set(self, options: dict[str, Any]) -> None:
        project = project_get(name=options["name"])
        changes: dict[str, Any] = {"public": options["public"]}
        if options["no_quota"]:
            changes["quota_bytes"] = None
        elif options["quota"] is not None:
            changes["quota_bytes"] = options["quota"]
        project_update(project=project, **changes)
        self.stdout.write(f"updated project {project.name}")

    def _list(self, options: dict[str, Any]) -> None:
        self.stdout.write(f"{'NAME':<32} {'VISIBILITY':<10} {'USED':>12} {'QUOTA':>12}")
        for project in project_list():
            used = size_format(project_usage(project=project))
            visibility = "public" if project.public else "private"
            quota = size_format(project.quota_bytes)
            self.stdout.write(f"{project.name:<32} {visibility:<10} {used:>12} {quota:>12}")
