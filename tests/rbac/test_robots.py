"""Robot accounts: names, permissions, secrets shown once, expiry, disabling, logging in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import Actor
from projects.services import project_create
from rbac.exceptions import LoginFailed, LoginThrottled, RobotInvalid
from rbac.models import Robot
from rbac.robots import (
    robot_authenticate,
    robot_create,
    robot_delete,
    robot_refresh_secret,
    robot_set_disabled,
)

ADMIN = Actor("admin", "127.0.0.1")
PULL_PUSH = [{"project": "team", "actions": ["push", "pull"]}]


@pytest.fixture(autouse=True)
def _clean_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def team(db):
    return project_create(name="team")


def test_a_project_robot_is_named_after_its_project_and_keeps_only_a_hash(team):
    robot, secret = robot_create(name="ci", project=team, permissions=PULL_PUSH, actor=ADMIN)
    assert robot.name == "robot$team+ci"
    assert robot.permissions == [{"project": "team", "actions": ["pull", "push"]}]
    assert secret not in robot.secret_hash and robot.secret_hash.startswith("argon2")
    assert robot.expires_at is None
    assert robot_authenticate(name="robot$team+ci", secret=secret, source="10.1.1.1") == robot
    with pytest.raises(LoginFailed):
        robot_authenticate(name="robot$team+ci", secret=secret + "x", source="10.1.1.1")


def test_a_system_robot_may_span_projects(team):
    project_create(name="other")
    permissions = [
        {"project": "team", "actions": ["pull"]},
        {"project": "other", "actions": ["pull", "push", "delete"]},
    ]
    robot, _ = robot_create(name="mirror", permissions=permissions, days=30, actor=ADMIN)
    assert robot.name == "robot$mirror" and robot.project is None
    assert timedelta(days=29) < robot.expires_at - timezone.now() <= timedelta(days=30)


@pytest.mark.parametrize(
    ("name", "permissions", "days", "message"),
    [
        ("CI", PULL_PUSH, None, "invalid robot name"),
        ("ci", [{"project": "team", "actions": ["pull", "admin"]}], None, "unknown actions"),
        ("ci", [{"project": "elsewhere", "actions": ["pull"]}], None, "may only act on"),
        ("ci", [], None, "at least one permission"),
        ("ci", PULL_PUSH, 0, "positive number of days"),
    ],
)
def test_invalid_robots_are_refused(team, name, permissions, days, message):
    with pytest.raises(RobotInvalid, match=message):
        robot_create(name=name, project=team, permissions=permissions, days=days, actor=ADMIN)
    assert not Robot.objects.exists()


def test_names_are_unique(team):
    robot_create(name="ci", project=team, permissions=PULL_PUSH, actor=ADMIN)
    with pytest.raises(RobotInvalid, match="exists already"):
        robot_create(name="ci", project=team, permissions=PULL_PUSH, actor=ADMIN)


def test_expired_and_disabled_robots_are_refused(team):
    robot, secret = robot_create(name="ci", project=team, permissions=PULL_PUSH, actor=ADMIN)
    robot_set_disabled(robot=robot, disabled=True, actor=ADMIN)
    with pytest.raises(LoginFailed, match="disabled"):
        robot_authenticate(name=robot.name, secret=secret, source="10.1.1.2")
    robot_set_disabled(robot=robot, disabled=False, actor=ADMIN)
    assert robot_authenticate(name=robot.name, secret=secret, source="10.1.1.2")
    Robot.objects.filter(pk=robot.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(LoginFailed, match="expired"):
        robot_authenticate(name=robot.name, secret=secret, source="10.1.1.2")
    results = [e.detail["result"] for e in AuditEntry.objects.filter(action="login").order_by("id")]
    assert results == ["disabled", "ok", "expired"]


def test_a_refreshed_secret_replaces_the_old_one(team):
    robot, old = robot_create(name="ci", project=team, permissions=PULL_PUSH, actor=ADMIN)
    new = robot_refresh_secret(robot=robot, actor=ADMIN)
    assert new != old
    with pytest.raises(LoginFailed):
        robot_authenticate(name=robot.name, secret=old, source="10.1.1.3")
    assert robot_authenticate(name=robot.name, secret=new, source="10.1.1.3")


def test_robot_logins_are_throttled_like_users(team, settings):
    settings.HARBORPY_LOGIN_MAX_FAILURES = 2
    robot, secret = robot_create(name="ci", project=team, permissions=PULL_PUSH, actor=ADMIN)
    for _ in range(2):
        with pytest.raises(LoginFailed):
            robot_authenticate(name=robot.name, secret="guess", source="10.1.1.4")
    with pytest.raises(LoginThrottled):
        robot_authenticate(name=robot.name, secret=secret, source="10.1.1.4")
    with pytest.raises(LoginFailed):  # an unknown robot fails like a wrong secret
        robot_authenticate(name="robot$nobody", secret="x", source="10.1.1.5")


def test_every_change_is_audited(team):
    robot, _ = robot_create(name="ci", project=team, permissions=PULL_PUSH, actor=ADMIN)
    robot_refresh_secret(robot=robot, actor=ADMIN)
    robot_set_disabled(robot=robot, disabled=True, actor=ADMIN)
    robot_delete(robot=robot, actor=ADMIN)
    changes = [
        (e.actor, e.resource, e.detail["change"])
        for e in AuditEntry.objects.filter(action="permission").order_by("id")
    ]
    assert changes == [
        ("admin", "robot$team+ci", "created"),
        ("admin", "robot$team+ci", "secret refreshed"),
        ("admin", "robot$team+ci", "disabled"),
        ("admin", "robot$team+ci", "deleted"),
    ]
    assert not Robot.objects.exists()
