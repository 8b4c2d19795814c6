"""Writes of the projects app."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from .exceptions import ProjectExists, ProjectNameInvalid, QuotaInvalid
from .models import Project

# One path component of a repository name, as Harbor restricts it.
PROJECT_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
PROJECT_NAME_MAX = 255

_UNSET: Any = object()


def check_project_name(name: str) -> str:
    """Return ``name`` if it can name a project, else raise ProjectNameInvalid."""
    if len(name) > PROJECT_NAME_MAX or not PROJECT_NAME.fullmatch(name):
        raise ProjectNameInvalid(
            f"invalid project name {name!r}: lowercase letters and digits, "
            "separated by single '.', '_' or '-', at most 255 characters"
        )
    return name


def _check_quota(quota_bytes: int | None) -> int | None:
    if quota_bytes is not None and (isinstance(quota_bytes, bool) or quota_bytes < 0):
        raise QuotaInvalid("a quota is a non-negative number of bytes, or none for no limit")
    return quota_bytes


def project_create(
    *, name: str, public: bool = False, quota_bytes: int | None = None, owner: Any = None
) -> Project:
    """Create a project; ProjectExists if the name is taken."""
    check_project_name(name)
    try:
        with transaction.atomic():
            return Project.objects.create(
                name=name, public=public, quota_bytes=_check_quota(quota_bytes), owner=owner
            )
    except IntegrityError:
        raise ProjectExists(f"project {name!r} exists already") from None


def project_update(
    *, project: Project, public: bool | None = None, quota_bytes: int | None = _UNSET
) -> Project:
    """Change a project's visibility and/or quota (``quota_bytes=None`` removes the limit)."""
    fields = []
    if public is not None:
        project.public = public
        fields.append("public")
    if quota_bytes is not _UNSET:
        project.quota_bytes = _check_quota(quota_bytes)
        fields.append("quota_bytes")
    if fields:
        project.save(update_fields=fields)
    return project
