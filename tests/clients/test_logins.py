"""docker login, push and pull as a local user and as a robot, and what each may not do.

(LDAP users: tests/rbac/test_ldap.py; SSO users' CLI secrets: tests/rbac/test_oidc.py.)
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.services import SYSTEM
from projects.models import Project
from rbac.bindings import Subject, binding_set
from rbac.cli_secrets import cli_secret_regenerate
from rbac.robots import robot_create
from rbac.roles import Role
from tests.fixtures.clients import Cli, CommandError, SampleImages

pytestmark = pytest.mark.clients


@pytest.fixture
def logged_out(registry, dockerd: Cli, sample_images: SampleImages):
    """The engine with the sample image loaded, logged out of the live registry afterwards."""
    dockerd("load", "-i", sample_images.archive)
    yield registry.host
    with contextlib.suppress(CommandError):
        dockerd("logout", registry.host)


def _push_pull(dockerd: Cli, sample_images: SampleImages, ref: str) -> None:
    dockerd("tag", sample_images.archive_ref, ref)
    dockerd("push", ref)
    dockerd("rmi", ref)
    dockerd("pull", ref)
    assert dockerd.json("image", "inspect", ref)[0]["Id"] == sample_images.single.config_digest
    dockerd("rmi", ref)


def _refused(dockerd: Cli, *args: str) -> str:
    with pytest.raises(CommandError) as failed:
        dockerd(*args)
    return (failed.value.stdout + failed.value.stderr).lower()


def test_a_local_user_logs_in_pushes_and_pulls_within_their_role(
    logged_out: str, dockerd: Cli, sample_images: SampleImages
) -> None:
    host = logged_out
    team = Project.objects.create(name="team", public=False)
    User = get_user_model()
    User.objects.create_user(username="lena", password="lena-pw-12345")
    User.objects.create_user(username="gary", password="gary-pw-12345")
    binding_set(project=team, subject=Subject("user", "lena"), role=Role.DEVELOPER, actor=SYSTEM)
    binding_set(project=team, subject=Subject("user", "gary"), role=Role.GUEST, actor=SYSTEM)

    assert "unauthorized" in _refused(dockerd, "login", host, "-u", "lena", "-p", "wrong")
    assert "Login Succeeded" in dockerd("login", host, "-u", "lena", "-p", "lena-pw-12345")
    _push_pull(dockerd, sample_images, f"{host}/team/app:1")

    # a guest pulls but may not push
    dockerd("login", host, "-u", "gary", "-p", "gary-pw-12345")
    dockerd("pull", f"{host}/team/app:1")
    dockerd("tag", sample_images.archive_ref, f"{host}/team/guest:1")
    assert "denied" in _refused(dockerd, "push", f"{host}/team/guest:1")
    dockerd("rmi", f"{host}/team/app:1", f"{host}/team/guest:1")

    # the CLI secret works in place of the password
    secret = cli_secret_regenerate(user=User.objects.get(username="lena"), actor=SYSTEM)
    dockerd("login", host, "-u", "lena", "-p", secret)
    _push_pull(dockerd, sample_images, f"{host}/team/app:2")

    # logged out, a private project is closed even to pulls
    dockerd("logout", host)
    assert _refused(dockerd, "pull", f"{host}/team/app:1")


def test_a_robot_logs_in_and_is_held_to_its_permissions(
    logged_out: str, dockerd: Cli, sample_images: SampleImages
) -> None:
    host = logged_out
    team = Project.objects.create(name="team", public=False)
    other = Project.objects.create(name="elsewhere", public=False)
    robot, secret = robot_create(
        name="ci",
        permissions=[{"project": "team", "actions": ["pull", "push"]}],
        project=team,
        actor=SYSTEM,
    )
    assert robot.name == "robot$team+ci"
    assert "Login Succeeded" in dockerd("login", host, "-u", robot.name, "-p", secret)
    _push_pull(dockerd, sample_images, f"{host}/team/built:1")

    # a robot of project team on project elsewhere
    assert other.name == "elsewhere"
    dockerd("tag", sample_images.archive_ref, f"{host}/elsewhere/built:1")
    assert "denied" in _refused(dockerd, "push", f"{host}/elsewhere/built:1")
    dockerd("rmi", f"{host}/elsewhere/built:1")

    # expired: the login itself is refused
    robot.expires_at = timezone.now() - timedelta(minutes=1)
    robot.save()
    assert "unauthorized" in _refused(dockerd, "login", host, "-u", robot.name, "-p", secret)
