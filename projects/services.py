"""Writes of the projects app."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from audit.services import SYSTEM, Actor, audit_record

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
    *,
    name: str,
    public: bool = False,
    quota_bytes: int | None = None,
    owner: Any = None,
    registry_id: int | None = None,
    actor: Actor = SYSTEM,
) -> Project:
    """Create a project; ProjectExists if the name is taken.

    ``registry_id`` makes it a proxy cache of that registry endpoint (the caller checks
    that the endpoint exists: endpoints live in an app above this one).
    """
    check_project_name(name)
    try:
        with transaction.atomic():
            project = Project.objects.create(
                name=name,
                public=public,
                quota_bytes=_check_quota(quota_bytes),
                owner=owner,
                registry_id=registry_id,
            )
            extra = {"registry_id": registry_id} if registry_id is not None else {}
            _audit(actor, project, "created", public=public, quota_bytes=quota_bytes, **extra)
            return project
    except IntegrityError:
        raise ProjectExists(f"project {name!r} exists already") from None


def project_update(
    *,
    project: Project,
    public: bool | None = None,
    quota_bytes: int | None = _UNSET,
    actor: Actor = SYSTEM,
) -> Project:
    """Change a project's visibility and/or quota (``quota_bytes=None`` removes the limit)."""
    changes: dict[str, Any] = {}
    if public is not None and public != project.public:
        changes["public"] = public
    if quota_bytes is not _UNSET and quota_bytes != project.quota_bytes:
        changes["quota_bytes"] = _check_quota(quota_bytes)
    if changes:
        with transaction.atomic():
            for field, value in changes.items():
                setattr(project, field, value)
            project.save(update_fields=list(changes))
            _audit(actor, project, "updated", **changes)
    return project


def _audit(actor: Actor, project: Project, change: str, **detail: Any) -> None:
    audit_record(
        actor=actor,
        action="project",
        resource=f"project:{project.name}",
        detail={"change": change, **detail},
    )
