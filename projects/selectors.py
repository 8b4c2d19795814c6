"""Reads of the projects app."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

from .exceptions import ProjectNotFound
from .models import Project


def project_get(*, name: str) -> Project:
    """The project called ``name``, or ProjectNotFound."""
    project = Project.objects.filter(name=name).first()
    if project is None:
        raise ProjectNotFound(f"project {name!r} does not exist")
    return project


def project_list() -> QuerySet[Project]:
    """Every project, by name."""
    return Project.objects.order_by("name")


@dataclass(frozen=True)
class Visibility:
    id: int
    name: str
    public: bool


def project_visibility(*, name: str) -> Visibility | None:
    """A project's id and public flag, or None: the one lookup every access decision makes.

    Fixed SQL rather than the ORM: it runs on every /v2/ request.
    """
    table = connection.ops.quote_name(Project._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, public FROM {table} WHERE name = %s", [name])
        row = cursor.fetchone()
    return Visibility(row[0], name, bool(row[1])) if row else None
