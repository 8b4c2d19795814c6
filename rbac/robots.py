"""Robot accounts: creation, secrets, permissions, expiry, and logging in as one.

The secret is shown once, when created or refreshed; only its hash is kept.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from projects.models import Project

from .exceptions import LoginFailed, RobotInvalid
from .models import ROBOT_PREFIX, Robot
from .services import login_attempt

ROBOT_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
ROBOT_ACTIONS = ("pull", "push", "delete")


def robot_full_name(name: str, project: Project | None) -> str:
    """The login name: ``robot$<project>+<name>``, or ``robot$<name>`` for a system robot."""
    return f"{ROBOT_PREFIX}{project.name}+{name}" if project else f"{ROBOT_PREFIX}{name}"


def robot_create(
    *,
    name: str,
    permissions: list[dict[str, Any]],
    project: Project | None = None,
    days: int | None = None,
    description: str = "",
    actor: Actor,
    created_by: Any = None,
) -> tuple[Robot, str]:
    """Create a robot; return it with its secret, which is not stored and not shown again.

    ``days`` is the lifetime (None: never expires).  A project robot may only
    hold permissions on its own project.
    """
    if len(name) > 128 or not ROBOT_NAME.fullmatch(name):
        raise RobotInvalid(
            f"invalid robot name {name!r}: lowercase letters and digits joined by . _ -"
        )
    if days is not None and days <= 0:
        raise RobotInvalid("a robot lives a positive number of days, or never")
    permissions = _checked_permissions(permissions, project)
    secret = _new_secret()
    try:
        with transaction.atomic():
            robot = Robot.objects.create(
                name=robot_full_name(name, project),
                project=project,
                description=description,
                secret_hash=make_password(secret),
                permissions=permissions,
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                created_by=created_by,
            )
            _audit(actor, robot, "created", permissions=permissions)
    except IntegrityError:
        raise RobotInvalid(f"robot {robot_full_name(name, project)!r} exists already") from None
    return robot, secret


def robot_refresh_secret(*, robot: Robot, actor: Actor) -> str:
    """Replace a robot's secret; the old one stops working at once."""
    secret = _new_secret()
    with transaction.atomic():
        robot.secret_hash = make_password(secret)
        robot.save(update_fields=["secret_hash"])
        _audit(actor, robot, "secret refreshed")
    return secret


def robot_set_disabled(*, robot: Robot, disabled: bool, actor: Actor) -> Robot:
    """Disable or enable a robot."""
    with transaction.atomic():
        robot.disabled = disabled
        robot.save(update_fields=["disabled"])
        _audit(actor, robot, "disabled" if disabled else "enabled")
    return robot


def robot_describe(*, robot: Robot, description: str, actor: Actor) -> Robot:
    """Change a robot's description."""
    if description != robot.description:
        with transaction.atomic():
            robot.description = description
            robot.save(update_fields=["description"])
            _audit(actor, robot, "described", description=description)
    return robot


def robot_delete(*, robot: Robot, actor: Actor) -> None:
    with transaction.atomic():
        _audit(actor, robot, "deleted")
        robot.delete()


def robot_authenticate(*, name: str, secret: str, source: str) -> Robot:
    """The robot these credentials belong to, if it may log in now.

    Expired and disabled robots are refused like a wrong secret (LoginFailed,
    with the reason in the audit log); failures are throttled as for users.
    """
    with login_attempt(name, source) as attempt:
        robot = Robot.objects.filter(name=name).first()
        # Hash something even for an unknown name, so timing does not tell names apart.
        valid = check_password(secret, robot.secret_hash if robot else make_password(None))
        if robot is None or not valid:
            raise LoginFailed("wrong robot name or secret")
        if robot.disabled:
            attempt.reason = "disabled"
            raise LoginFailed("this robot account is disabled")
        if robot.expires_at is not None and robot.expires_at <= timezone.now():
            attempt.reason = "expired"
            raise LoginFailed("this robot account has expired")
        return robot


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _checked_permissions(
    permissions: list[dict[str, Any]], project: Project | None
) -> list[dict[str, Any]]:
    checked = []
    for entry in permissions:
        target = entry.get("project")
        actions = entry.get("actions")
        if not isinstance(target, str) or not isinstance(actions, list) or not actions:
            raise RobotInvalid("each permission names a project and a list of actions")
        unknown = sorted(set(actions) - set(ROBOT_ACTIONS))
        if unknown:
            raise RobotInvalid(f"unknown actions {unknown}; a robot may pull, push or delete")
        if project is not None and target != project.name:
            raise RobotInvalid(
                f"a robot of project {project.name!r} may only act on that project, not {target!r}"
            )
        if target != "*" and not Project.objects.filter(name=target).exists():
            raise RobotInvalid(f"project {target!r} does not exist")
        checked.append({"project": target, "actions": sorted(set(actions))})
    if not checked:
        raise RobotInvalid("a robot needs at least one permission")
    return checked


def _audit(actor: Actor, robot: Robot, change: str, **detail: Any) -> None:
    audit_record(
        actor=actor,
        action="permission",
        resource=robot.name,
        detail={"change": change, **detail},
    )
