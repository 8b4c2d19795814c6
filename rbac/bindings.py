"""Role bindings: who holds which role in a project, and system settings.

Every change is audited in the same transaction as the change itself.
Subjects are written ``user:alice``, ``group:dev-team`` or ``robot:ci``; a bare
name is a group (``dev-team``), as in the declarative files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit.services import Actor, audit_record
from projects.models import Project
from projects.services import project_create

from .exceptions import BindingInvalid
from .models import ROBOT_PREFIX, Robot, RoleBinding, SystemSetting
from .roles import Role

SUBJECT_KINDS = ("user", "group", "robot")


@dataclass(frozen=True)
class Subject:
    """A parsed subject: its kind and name (robots by their full ``robot$`` name)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def subject_parse(text: str, *, project: str | None = None) -> Subject:
    """``dev-team`` → group; ``user:alice``; ``group:x``; ``robot:ci`` → the project's robot.

    A robot named without the ``robot$`` prefix is looked for first as the
    project's robot (``robot$<project>+ci``), then as a system robot.
    """
    kind, sep, name = text.partition(":")
    if not sep:
        kind, name = "group", text
    name = name.strip()
    if kind not in SUBJECT_KINDS or not name:
        raise BindingInvalid(f"invalid subject {text!r}: use a group name, user:, group: or robot:")
    if kind == "robot" and not name.startswith(ROBOT_PREFIX):
        candidates = [f"{ROBOT_PREFIX}{project}+{name}"] if project else []
        candidates.append(f"{ROBOT_PREFIX}{name}")
        found = Robot.objects.filter(name__in=candidates).values_list("name", flat=True)
        name = next((c for c in candidates if c in set(found)), candidates[0])
    return Subject(kind, name)


def role_parse(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise BindingInvalid(f"unknown role {text!r}; roles are {roles}") from None


def binding_subject_filter(subject: Subject, *, create_group: bool = False) -> dict[str, Any]:
    """The RoleBinding field for ``subject``: its user, group or robot row.

    Groups are created on demand when ``create_group`` (an LDAP or SSO group
    can hold a role before its first member logs in); users and robots must exist.
    """
    if subject.kind == "group":
        if create_group:
            group, _ = Group.objects.get_or_create(name=subject.name)
            return {"group": group}
        found = Group.objects.filter(name=subject.name).first()
        if found is None:
            raise BindingInvalid(f"group {subject.name!r} does not exist")
        return {"group": found}
    if subject.kind == "user":
        user = get_user_model().objects.filter(username=subject.name).first()
        if user is None:
            raise BindingInvalid(f"user {subject.name!r} does not exist")
        return {"user": user}
    robot = Robot.objects.filter(name=subject.name).first()
    if robot is None:
        raise BindingInvalid(f"robot {subject.name!r} does not exist")
    return {"robot": robot}


def bindings_of(project: Project) -> dict[str, str]:
    """The project's bindings as ``{subject: role}``."""
    rows = RoleBinding.objects.filter(project=project).select_related("user", "group", "robot")
    return {row.subject: row.role for row in rows}


def binding_set(*, project: Project, subject: Subject, role: Role, actor: Actor) -> bool:
    """Give ``subject`` ``role`` in ``project``, replacing its old role; True if it changed."""
    with transaction.atomic():
        lookup = binding_subject_filter(subject, create_group=True)
        row = RoleBinding.objects.select_for_update().filter(project=project, **lookup).first()
        if row is not None and row.role == role:
            return False
        old = row.role if row is not None else None
        if row is None:
            RoleBinding.objects.create(project=project, role=role, **lookup)
        else:
            row.role = role
            row.save(update_fields=["role"])
        _audit(actor, project, subject, change="bound", role=role.value, previous=old)
    return True


def binding_remove(*, project: Project, subject: Subject, actor: Actor) -> bool:
    """Take ``subject``'s role in ``project`` away; True if it had one."""
    with transaction.atomic():
        try:
            lookup = binding_subject_filter(subject)
        except BindingInvalid:
            return False
        row = RoleBinding.objects.select_for_update().filter(project=project, **lookup).first()
        if row is None:
            return False
        _audit(actor, project, subject, change="unbound", previous=row.role)
        row.delete()
    return True


def setting_set(*, key: str, value: Any, actor: Actor) -> None:
    """Change a system setting, audited."""
    with transaction.atomic():
        SystemSetting.objects.update_or_create(key=key, defaults={"value": value})
        audit_record(
            actor=actor, action="setting", resource=f"setting:{key}", detail={"value": value}
        )


def _audit(actor: Actor, project: Project, subject: Subject, **detail: Any) -> None:
    audit_record(
        actor=actor,
        action="permission",
        resource=f"project:{project.name}",
        detail={"subject": str(subject), **detail},
    )


def project_create_owned(
    *,
    name: str,
    public: bool = False,
    quota_bytes: int | None = None,
    owner: Any = None,
    registry_id: int | None = None,
    actor: Actor,
) -> Project:
    """Create a project whose owner (a user, if any) becomes its projectAdmin, as in Harbor."""
    with transaction.atomic():
        project = project_create(
            name=name,
            public=public,
            quota_bytes=quota_bytes,
            owner=owner,
            registry_id=registry_id,
            actor=actor,
        )
        if owner is not None:
            subject = Subject("user", owner.get_username())
            binding_set(project=project, subject=subject, role=Role.PROJECT_ADMIN, actor=actor)
    return project
