"""/api/v2.0/robots and /projects/{p}/robots over HTTP: shapes, scope, secrets, /v2/ access."""

from __future__ import annotations

import os

import pytest
import requests

from audit.models import AuditEntry
from audit.services import SYSTEM
from projects.models import Project
from rbac.bindings import Subject, binding_set
from rbac.models import Robot
from rbac.policy import Kind, Principal, authorize
from rbac.roles import ALL_PERMISSIONS, Act, Res, Role
from rbac.selectors import projects_permitting
from tests.api.test_projects_api import api, as_, errors, password_hash, team  # noqa: F401
from tests.distribution.helpers import (
    OCI_MANIFEST,
    digest_of,
    encode,
    make_config,
    make_image_manifest,
    push_image,
)
from tests.fixtures.server import ADMIN


def robot_body(name: str, namespace: str, *actions: str, level: str = "project", **extra):
    return {
        "name": name,
        "level": level,
        "duration": extra.pop("duration", -1),
        "permissions": [
            {
                "kind": "project",
                "namespace": namespace,
                "access": [{"resource": "repository", "action": a} for a in actions],
            }
        ],
        **extra,
    }


def create(registry, who, body) -> requests.Response:
    return requests.post(api(registry, "robots"), json=body, auth=as_(who))


def push_as(registry, auth, name: str, tag: str) -> int:
    """Push a small image over /v2/ with Basic ``auth``; the first refused status, or 201."""
    config, layer = make_config(), os.urandom(512)
    for blob in (config, layer):
        response = requests.post(
            f"{registry.url}/v2/{name}/blobs/uploads/",
            params={"digest": digest_of(blob)},
            data=blob,
            auth=auth,
        )
        if response.status_code != 201:
            return response.status_code
    manifest = encode(make_image_manifest(config, [layer]))
    response = requests.put(
        f"{registry.url}/v2/{name}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": OCI_MANIFEST},
        auth=auth,
    )
    return response.status_code


def pull_as(registry, auth, name: str, tag: str) -> int:
    response = requests.get(
        f"{registry.url}/v2/{name}/manifests/{tag}",
        headers={"Accept": OCI_MANIFEST},
        auth=auth,
    )
    return response.status_code


@pytest.mark.usefixtures("team")
def test_a_project_robot_is_shown_its_secret_once_and_pulls_and_pushes(registry) -> None:
    created = create(registry, "pat", robot_body("ci", "team", "pull", "push", description="CI"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "name", "secret", "expires_at", "creation_time"}
    assert body["name"] == "robot$team+ci" and body["expires_at"] == -1 and body["secret"]
    robot_auth = (body["name"], body["secret"])

    shown = requests.get(api(registry, f"robots/{body['id']}"), auth=as_("pat")).json()
    assert "secret" not in shown
    assert (shown["level"], shown["duration"], shown["disable"]) == ("project", -1, False)
    assert shown["description"] == "CI"
    assert shown["permissions"] == [
        {
            "kind": "project",
            "namespace": "team",
            "access": [
                {"resource": "repository", "action": "pull"},
                {"resource": "repository", "action": "push"},
            ],
        }
    ]
    listed = requests.get(api(registry, "robots"), auth=as_("pat")).json()
    assert all("secret" not in r for r in listed)

    assert push_as(registry, robot_auth, "team/app", "v1") == 201
    assert pull_as(registry, robot_auth, "team/app", "v1") == 200
    assert push_as(registry, robot_auth, "library/app", "v1") in (401, 403)
    assert pull_as(registry, ("robot$team+ci", "wrong"), "team/app", "v1") == 401

    [entry] = AuditEntry.objects.filter(resource="robot$team+ci", action="permission")
    assert (entry.actor, entry.detail["change"]) == ("pat", "created")


@pytest.mark.usefixtures("team")
def test_who_may_create_which_robot(registry) -> None:
    assert create(registry, "dev", robot_body("a", "team", "pull")).status_code == 403
    outsider = create(registry, "out", robot_body("a", "team", "pull"))
    assert outsider.status_code == 404 and errors(outsider) == ["NOT_FOUND"]
    system = create(registry, "pat", robot_body("a", "*", "pull", level="system"))
    assert system.status_code == 403 and errors(system) == ["FORBIDDEN"]
    anonymous = requests.post(api(registry, "robots"), json=robot_body("a", "team", "pull"))
    assert anonymous.status_code == 401
    for bad in (
        robot_body("a", "*", "pull"),  # a project robot names its project
        robot_body("a", "team", "pull", duration=0),
        robot_body("a", "team", "sing"),
        robot_body("Bad Name", "team", "pull"),
        {**robot_body("a", "team", "pull"), "permissions": []},
    ):
        response = create(registry, "pat", bad)
        assert response.status_code == 400 and errors(response)[0] == "BAD_REQUEST", bad
    assert create(registry, "pat", robot_body("a", "team", "pull")).status_code == 201
    again = create(registry, "pat", robot_body("a", "team", "pull"))
    assert again.status_code == 400 and "exists" in again.text
    assert not Robot.objects.filter(name="robot$a").exists()


@pytest.mark.usefixtures("team")
def test_lists_show_only_robots_of_projects_the_caller_may_list(registry) -> None:
    create(registry, "pat", robot_body("ci", "team", "pull"))
    Project.objects.create(name="other", public=True)
    create(registry, "admin", robot_body("ci", "other", "pull"))
    create(registry, "admin", robot_body("everywhere", "*", "pull", level="system", duration=30))

    def names(who, **params):
        response = requests.get(api(registry, "robots"), params=params, auth=as_(who))
        assert response.status_code == 200, response.text
        return [r["name"] for r in response.json()]

    assert names("admin") == ["robot$team+ci", "robot$other+ci", "robot$everywhere"]
    assert names("gus") == ["robot$team+ci"]  # guests list robots (Harbor 2.13)
    assert names("lim") == [] and names("out") == []
    assert names("admin", q="level=system") == ["robot$everywhere"]
    assert names("admin", q="name=~other") == ["robot$other+ci"]
    team_id = Project.objects.get(name="team").pk
    assert names("admin", q=f"project_id={team_id}") == ["robot$team+ci"]
    bad = requests.get(api(registry, "robots"), params={"q": "level=x"}, auth=ADMIN)
    assert bad.status_code == 400
    assert requests.get(api(registry, "robots")).status_code == 401

    system = Robot.objects.get(name="robot$everywhere")
    assert requests.get(api(registry, f"robots/{system.pk}"), auth=as_("pat")).status_code == 403
    got = requests.get(api(registry, f"robots/{system.pk}"), auth=ADMIN).json()
    assert got["level"] == "system" and got["duration"] == 30 and got["expires_at"] > 0

    url = api(registry, "projects/team/robots")
    assert [r["name"] for r in requests.get(url, auth=as_("gus")).json()] == ["robot$team+ci"]
    assert requests.get(url, auth=as_("lim")).status_code == 403
    assert requests.get(url, auth=as_("out")).status_code == 404


@pytest.mark.usefixtures("team")
def test_secrets_are_refreshed_robots_disabled_described_and_deleted(registry) -> None:
    body = create(registry, "pat", robot_body("ci", "team", "pull")).json()
    url = api(registry, f"robots/{body['id']}")
    push_image(registry, "team/app", "v1")
    first = (body["name"], body["secret"])
    assert pull_as(registry, first, "team/app", "v1") == 200

    assert requests.patch(url, json={"secret": ""}, auth=as_("gus")).status_code == 403
    assert requests.patch(url, json={"secret": "mine"}, auth=as_("pat")).status_code == 400
    refreshed = requests.patch(url, json={"secret": ""}, auth=as_("pat"))
    assert refreshed.status_code == 200 and set(refreshed.json()) == {"secret"}
    second = (body["name"], refreshed.json()["secret"])
    assert pull_as(registry, first, "team/app", "v1") == 401
    assert pull_as(registry, second, "team/app", "v1") == 200
    again = requests.post(f"{url}/secret", auth=as_("pat")).json()["secret"]
    assert pull_as(registry, second, "team/app", "v1") == 401
    third = (body["name"], again)

    changed = requests.put(url, json={"disable": True, "description": "off"}, auth=as_("pat"))
    assert changed.status_code == 200
    shown = requests.get(url, auth=as_("pat")).json()
    assert (shown["disable"], shown["description"]) == (True, "off")
    assert pull_as(registry, third, "team/app", "v1") == 401
    assert requests.put(url, json={"disable": False}, auth=as_("pat")).status_code == 200
    assert pull_as(registry, third, "team/app", "v1") == 200

    assert requests.delete(url, auth=as_("gus")).status_code == 403
    assert requests.delete(url, auth=as_("pat")).status_code == 200
    assert requests.get(url, auth=as_("pat")).status_code == 404
    assert requests.get(api(registry, "robots/999999"), auth=ADMIN).status_code == 404

    changes = AuditEntry.objects.filter(resource="robot$team+ci", action="permission")
    assert [(e.actor, e.detail["change"]) for e in changes.order_by("id")] == [
        ("pat", "created"),
        ("pat", "secret refreshed"),
        ("pat", "secret refreshed"),
        ("pat", "described"),
        ("pat", "disabled"),
        ("pat", "enabled"),
        ("pat", "deleted"),
    ]


@pytest.mark.django_db
def test_the_list_scope_agrees_with_authorize(django_user_model) -> None:
    """projects_permitting is authorize's list form: they agree for every role and permission."""
    public = Project.objects.create(name="pub", public=True)
    private = Project.objects.create(name="priv", public=False)
    Project.objects.create(name="none", public=False)
    principals = [Principal()]
    for role in Role:
        user = django_user_model.objects.create(username=f"u-{role.value}")
        for project in (public, private):
            subject = Subject("user", user.username)
            binding_set(project=project, subject=subject, role=role, actor=SYSTEM)
        principals.append(Principal(kind=Kind.USER, name=user.username, user_id=user.pk))
    robot = {"project": "priv", "actions": ["pull", "push"]}
    principals.append(Principal(kind=Kind.ROBOT, name="robot$x", robot_permissions=(robot,)))
    for principal in principals:
        for permission in sorted(ALL_PERMISSIONS | {(Res.ROBOT, Act.LIST)}):
            listed = set(projects_permitting(principal, permission))
            every = Project.objects.all()
            allowed = {p for p in every if authorize(principal, permission, p).allowed}
            assert listed == allowed, (principal.name, permission)
