"""Every mutating console endpoint, generated from the console's routes, without the right.

A guest of the project (who may see it) gets 403 and changes nothing; anonymous is sent to
the login page; an outsider gets 404 for a private project, as if it did not exist.  The
system admin, as a control, is not refused.  A new POST route is in the battery by itself.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, reverse

from audit.models import AuditEntry, AuditPurgeRun, AuditPurgeSchedule
from audit.services import SYSTEM
from console.urls import urlpatterns
from distribution.models import (
    GCRun,
    GCSchedule,
    ImmutableRule,
    Manifest,
    Repository,
    RetentionPolicy,
    RetentionRun,
    Tag,
)
from projects.models import Project
from rbac.bindings import Subject, binding_set
from rbac.models import SystemSetting
from rbac.policy import ADMIN_ONLY, PROJECT_CREATION
from rbac.robots import robot_create
from rbac.roles import Role
from replication.models import Execution, RegistryEndpoint, ReplicationPolicy

DIGEST = "sha256:" + "a" * 64
FORM = {
    "name": "x",
    "kind": "user",
    "role": "guest",
    "subject": "user:guest",
    "tag": "1",
    "public": "1",
    "quota": "1G",
    "username": "newcomer",
    "email": "",
    "password": "A-long-password-77",
    "actions": "pull",
    "days": "",
    "admin": "1",
    "active": "0",
    "disabled": "1",
    "project_creation_restriction": "everyone",
    "url": "http://127.0.0.1:9",
    "direction": "push",
    "trigger": "manual",
    "enabled": "1",
    "retention_hour": "0",
    "operations": "pull",
}


def _mutating(pattern: URLPattern) -> bool:
    return "POST" in getattr(pattern.callback, "console_methods", ())


ENDPOINTS = [p for p in urlpatterns if isinstance(p, URLPattern) and _mutating(p)]


@pytest.fixture
def world(db, settings):
    """A private project with a guest, a robot and a tagged manifest; an outsider; an admin."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed
    User = get_user_model()
    project = Project.objects.create(name="p", public=False)
    Project.objects.create(name="pub", public=True)
    guest = User.objects.create_user("guest", password="x")
    outsider = User.objects.create_user("outsider", password="x")
    admin = User.objects.create_superuser("root", password="x")
    binding_set(project=project, subject=Subject("user", "guest"), role=Role.GUEST, actor=SYSTEM)
    robot, _ = robot_create(
        name="ci",
        permissions=[{"project": "p", "actions": ["pull"]}],
        project=project,
        actor=SYSTEM,
    )
    repository = Repository.objects.create(name="p/app", project=project)
    manifest = Manifest.objects.create(
        repository=repository,
        digest=DIGEST,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=2,
        body=b"{}",
    )
    Tag.objects.create(repository=repository, name="1", manifest=manifest)
    SystemSetting.objects.create(key=PROJECT_CREATION, value=ADMIN_ONLY)
    endpoint = RegistryEndpoint.objects.create(name="remote", url="http://127.0.0.1:9")
    policy = ReplicationPolicy.objects.create(name="nightly", endpoint=endpoint, direction="push")
    execution = Execution.objects.create(policy=policy)
    return {
        "guest": guest,
        "outsider": outsider,
        "admin": admin,
        "robot": robot,
        "endpoint": endpoint,
        "policy": policy,
        "execution": execution,
    }


def url_of(pattern: URLPattern, world) -> str:
    groups = pattern.pattern.regex.groupindex
    kwargs: dict[str, object] = {}
    if "name" in groups:
        kwargs["name"] = "p/app" if "digest" in groups else "p"
    if "digest" in groups:
        kwargs["digest"] = DIGEST
    if "robot_id" in groups:
        kwargs["robot_id"] = world["robot"].pk
    if "user_id" in groups:
        kwargs["user_id"] = world["outsider"].pk
    for key in ("endpoint", "policy", "execution"):
        if f"{key}_id" in groups:
            kwargs[f"{key}_id"] = world[key].pk
    return reverse(f"console:{pattern.name}", kwargs=kwargs)


def form_for(world) -> dict[str, object]:
    return {**FORM, "endpoint": world["endpoint"].pk}


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_battery_covers_every_kind_of_change() -> None:
    names = {p.name for p in ENDPOINTS}
    assert {
        "projects",
        "member_add",
        "member_remove",
        "robot_create",
        "robot_delete",
        "artifact_delete",
        "tag_add",
        "tag_remove",
        "project_settings",
        "project_quota",
        "user_admin",
        "admin_settings",
        "admin_gc",
        "registry_new",
        "registry_test",
        "registry_delete",
        "policy_new",
        "policy_enable",
        "policy_run",
        "execution_stop",
        "admin_gc_schedule",
        "retention_set",
        "retention_run",
        "immutable_add",
        "immutable_remove",
        "admin_audit_rotation",
        "admin_audit_rotation_schedule",
    } <= names, names


@pytest.mark.parametrize("pattern", ENDPOINTS, ids=lambda p: p.name)
def test_a_guest_is_refused_and_changes_nothing(pattern: URLPattern, world) -> None:
    before = AuditEntry.objects.count()
    response = client_for(world["guest"]).post(url_of(pattern, world), form_for(world))
    assert response.status_code == 403
    assert AuditEntry.objects.count() == before, "nothing was changed (or recorded)"
    assert Tag.objects.filter(name="1").exists() and Manifest.objects.exists()
    assert not GCRun.objects.exists(), "no garbage collection was started"
    assert list(RegistryEndpoint.objects.values_list("name", "url")) == [
        ("remote", "http://127.0.0.1:9")
    ]
    assert list(ReplicationPolicy.objects.values_list("name", "enabled")) == [("nightly", True)]
    assert list(Execution.objects.values_list("status", flat=True)) == ["pending"]
    assert not GCSchedule.objects.exists() and not RetentionRun.objects.exists()
    assert not ImmutableRule.objects.exists() and not RetentionPolicy.objects.exists()
    assert not AuditPurgeRun.objects.exists() and not AuditPurgeSchedule.objects.exists()


@pytest.mark.parametrize("pattern", ENDPOINTS, ids=lambda p: p.name)
def test_anonymous_is_sent_to_log_in(pattern: URLPattern, world) -> None:
    url = url_of(pattern, world)
    response = client_for(None).post(url, form_for(world))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("pattern", ENDPOINTS, ids=lambda p: p.name)
def test_an_outsider_does_not_learn_the_private_project_exists(pattern, world) -> None:
    response = client_for(world["outsider"]).post(url_of(pattern, world), form_for(world))
    in_project = "name" in pattern.pattern.regex.groupindex
    assert response.status_code == (404 if in_project else 403)


@pytest.mark.parametrize("pattern", ENDPOINTS, ids=lambda p: p.name)
def test_the_system_admin_is_not_refused(pattern: URLPattern, world) -> None:
    response = client_for(world["admin"]).post(url_of(pattern, world), form_for(world))
    assert response.status_code in (200, 302), response.content[:500]


def test_the_project_list_shows_public_and_member_projects_only(world) -> None:
    Project.objects.create(name="hidden", public=False)
    page = client_for(world["guest"]).get("/projects/").content.decode()
    assert 'href="/projects/p/"' in page and 'href="/projects/pub/"' in page
    assert 'href="/projects/hidden/"' not in page
    assert 'id="create-project"' not in page, "adminonly: no creation form for users"
    page = client_for(world["admin"]).get("/projects/?q=hid").content.decode()
    assert 'href="/projects/hidden/"' in page and 'href="/projects/p/"' not in page
