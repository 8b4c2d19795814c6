"""Reads of the projects app."""

from __future__ import annotations

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
