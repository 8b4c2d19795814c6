"""Access to /v2/ over HTTP: challenges, the token service, Basic, roles, robots, private projects.

Against a live server; users, projects and bindings are rows in the test database
the server shares.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import SYSTEM
from projects.models import Project
from rbac.bindings import Subject, binding_set
from rbac.robots import robot_create
from rbac.roles import Role
from tests.distribution.helpers import (
    DOCKER_MANIFEST,
    assert_error,
    push_blob,
    push_image,
)
from tests.fixtures import authed

PASSWORD = "user-secret-pw-1"


@pytest.fixture(scope="session")
def password_hash() -> str:
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


@pytest.fixture
def users(registry, password_hash):
    """alice..eve, one per role in the private project ``secret``; frank belongs nowhere."""
    secret = Project.objects.create(name="secret", public=False)
    Project.objects.create(name="other", public=False)
    roles = {
        "alice": Role.PROJECT_ADMIN,
        "mallory": Role.MAINTAINER,
        "dave": Role.DEVELOPER,
        "gus": Role.GUEST,
        "lim": Role.LIMITED_GUEST,
    }
    User = get_user_model()
    for name, role in roles.items():
        User.objects.create(username=name, password=password_hash)
        binding_set(project=secret, subject=Subject("user", name), role=role, actor=SYSTEM)
    User.objects.create(username="frank", password=password_hash)
    return secret


def as_user(name: str) -> tuple[str, str]:
    return (name, PASSWORD)


def token(registry, scope: str | None, auth=None) -> dict:
    params = {"service": "harborpy"}
    if scope:
        params["scope"] = scope
    response = requests.get(f"{registry.url}/service/token", params=params, auth=auth)
    assert response.status_code == 200, response.text
    return response.json()


def claims(body: dict) -> dict:
    return jwt.decode(body["token"], options={"verify_signature": False})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def challenge_of(response) -> dict[str, str]:
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


# --- challenges and anonymous access -------------------------------------------------------


def test_the_base_endpoint_challenges_anonymous_clients(registry) -> None:
    response = requests.get(f"{registry.url}/v2/")
    assert_error(response, 401, "UNAUTHORIZED")
    params = challenge_of(response)
    assert params == {"realm": f"{registry.url}/service/token", "service": "harborpy"}
    assert authed.get(f"{registry.url}/v2/").status_code == 200


def test_anonymous_pull_of_a_public_project(registry) -> None:
    pushed = push_image(registry, "lib/open", "v1")
    for path in ("manifests/v1", f"blobs/{pushed.blobs[0]}", "tags/list"):
        assert requests.get(f"{registry.url}/v2/lib/open/{path}").status_code == 200, path
    response = requests.post(f"{registry.url}/v2/lib/open/blobs/uploads/")
    assert_error(response, 401, "UNAUTHORIZED")
    assert challenge_of(response)["scope"] == "repository:lib/open:pull,push"
    response = requests.delete(f"{registry.url}/v2/lib/open/manifests/{pushed.digest}")
    assert challenge_of(response)["scope"] == "repository:lib/open:delete"
    assert requests.get(f"{registry.url}/v2/_catalog").status_code == 401


def test_a_private_project_answers_outsiders_as_an_unknown_one_would(registry, users) -> None:
    push_image(registry, "secret/app", "v1")

    def answers(auth) -> list[tuple]:
        seen = []
        for project in ("secret", "nothere"):
            for method, path in (
                ("GET", "manifests/v1"),
                ("HEAD", "manifests/v1"),
                ("GET", "tags/list"),
                ("POST", "blobs/uploads/"),
                ("DELETE", "manifests/v1"),
            ):
                r = requests.request(method, f"{registry.url}/v2/{project}/app/{path}", auth=auth)
                challenge = r.headers.get("WWW-Authenticate", "").replace(project, "P")
                seen.append(
                    (project, r.status_code, r.content.replace(project.encode(), b"P"), challenge)
                )
        return seen

    for auth in (None, as_user("frank")):
        seen = answers(auth)
        private = [entry[1:] for entry in seen if entry[0] == "secret"]
        unknown = [entry[1:] for entry in seen if entry[0] == "nothere"]
        assert private == unknown, auth
        assert {status for status, *_ in private} == ({401} if auth is None else {403})
    # a token asked for either is the same: nothing granted
    for project in ("secret", "nothere"):
        granted = claims(token(registry, f"repository:{project}/app:pull,push", as_user("frank")))
        assert granted["access"] == [
            {"type": "repository", "name": f"{project}/app", "actions": []}
        ]


# --- roles over HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "pull", "push", "delete"),
    [
        ("alice", True, True, True),
        ("mallory", True, True, True),
        ("dave", True, True, False),
        ("gus", True, False, False),
        ("lim", True, False, False),
        ("frank", False, False, False),
    ],
)
def test_each_role_pulls_pushes_and_deletes_as_the_table_says(
    registry, users, user: str, pull: bool, push: bool, delete: bool
) -> None:
    pushed = push_image(registry, "secret/app", "v1")
    auth = as_user(user)
    got = requests.get(f"{registry.url}/v2/secret/app/manifests/v1", auth=auth)
    assert got.status_code == (200 if pull else 403)
    started = requests.post(f"{registry.url}/v2/secret/app/blobs/uploads/", auth=auth)
    assert started.status_code == (202 if push else 403)
    deleted = requests.delete(f"{registry.url}/v2/secret/app/manifests/{pushed.digest}", auth=auth)
    assert deleted.status_code == (202 if delete else 403)
    if not delete:
        assert_error(deleted, 403, "DENIED")
    # the token service grants the same
    granted = claims(token(registry, "repository:secret/app:pull,push,delete", auth))["access"]
    expected = [a for a, ok in (("pull", pull), ("push", push), ("delete", delete)) if ok]
    assert granted[0]["actions"] == expected


def test_a_group_binding_gives_its_members_the_role(registry, users) -> None:
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="dev-team")
    team.user_set.add(get_user_model().objects.get(username="frank"))
    url = f"{registry.url}/v2/secret/app/blobs/uploads/"
    assert requests.post(url, auth=as_user("frank")).status_code == 403
    binding_set(
        project=users, subject=Subject("group", "dev-team"), role=Role.DEVELOPER, actor=SYSTEM
    )
    assert requests.post(url, auth=as_user("frank")).status_code == 202


def test_the_catalog_is_for_system_admins(registry, users) -> None:
    assert authed.get(f"{registry.url}/v2/_catalog").status_code == 200
    for user in ("alice", "lim"):
        listing = requests.get(f"{registry.url}/v2/_catalog", auth=as_user(user))
        assert_error(listing, 403, "DENIED")


# --- the token service ------------------------------------------------------------------------


def test_a_token_grants_what_the_principal_may_do_and_works_on_v2(registry, users) -> None:
    body = token(registry, "repository:secret/app:pull,push", as_user("dave"))
    assert body["expires_in"] == 1800 and body["access_token"] == body["token"]
    c = claims(body)
    assert (c["sub"], c["aud"], c["iss"]) == ("dave", "harborpy", "harborpy-token-service")
    assert c["exp"] - c["iat"] == 1800
    digest = push_blob(registry, "lib/unused", b"x")  # the admin's, elsewhere
    headers = bearer(body["token"])
    assert requests.get(f"{registry.url}/v2/", headers=headers).status_code == 200
    started = requests.post(f"{registry.url}/v2/secret/app/blobs/uploads/", headers=headers)
    assert started.status_code == 202
    # the same token on another repository: 401 insufficient_scope, with what it needs
    other = requests.get(f"{registry.url}/v2/lib/unused/blobs/{digest}", headers=headers)
    assert_error(other, 401, "UNAUTHORIZED")
    assert challenge_of(other)["error"] == "insufficient_scope"
    assert challenge_of(other)["scope"] == "repository:lib/unused:pull"
    # delete was not asked for, so not granted
    deleted = requests.delete(f"{registry.url}/v2/secret/app/blobs/{digest}", headers=headers)
    assert deleted.status_code == 401


def test_anonymous_tokens_grant_pull_on_public_projects_only(registry, users) -> None:
    body = token(registry, "repository:lib/app:pull,push")
    assert claims(body)["sub"] == ""
    assert claims(body)["access"][0]["actions"] == ["pull"]
    assert claims(token(registry, "repository:secret/app:pull"))["access"][0]["actions"] == []
    assert claims(token(registry, None))["access"] == []


def test_the_token_service_refuses_bad_credentials_and_throttles(registry, users) -> None:
    url = f"{registry.url}/service/token"
    elsewhere = requests.get(url, params={"service": "elsewhere"}, auth=as_user("dave"))
    assert elsewhere.status_code == 400
    bad = requests.get(url, params={"scope": "repository:"}, auth=as_user("dave"))
    assert bad.status_code == 400
    wrong = requests.get(url, params={"service": "harborpy"}, auth=("dave", "nope"))
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["code"] == "UNAUTHORIZED"
    for _ in range(settings.HARBORPY_LOGIN_MAX_FAILURES - 1):
        assert requests.get(url, auth=("dave", "nope")).status_code == 401
    throttled = requests.get(url, auth=as_user("dave"))  # even the right password now
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    v2 = requests.get(f"{registry.url}/v2/", auth=as_user("dave"))
    assert_error(v2, 429, "TOOMANYREQUESTS")
    # another account from the same address is not affected
    assert requests.get(url, auth=as_user("gus")).status_code == 200
    results = AuditEntry.objects.filter(action="login", resource="user:dave")
    assert {e.detail["result"] for e in results} >= {"failed", "throttled"}


def test_the_oauth2_post_form_issues_tokens_too(registry, users) -> None:
    form = {
        "grant_type": "password",
        "service": "harborpy",
        "scope": "repository:secret/app:pull",
        "username": "gus",
        "password": PASSWORD,
    }
    body = requests.post(f"{registry.url}/service/token", data=form).json()
    assert claims(body)["access"][0]["actions"] == ["pull"]
    form["grant_type"] = "refresh_token"
    assert requests.post(f"{registry.url}/service/token", data=form).status_code == 400


def _crafted(key, **overrides) -> str:
    now = int(time.time())
    payload = {
        "iss": "harborpy-token-service",
        "sub": "admin",
        "aud": "harborpy",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "access": [{"type": "repository", "name": "secret/app", "actions": ["pull", "push"]}],
        **overrides,
    }
    return jwt.encode(payload, key, algorithm="RS256")


def test_forged_expired_and_misaddressed_tokens_are_refused(registry, users) -> None:
    push_image(registry, "secret/app", "v1")
    url = f"{registry.url}/v2/secret/app/manifests/v1"
    # the server's own key (same data folder) signs a good one: the control
    pem = (registry.data / "token_signing_key.pem").read_bytes()
    key = load_pem_private_key(pem, password=None)
    assert requests.get(url, headers=bearer(_crafted(key))).status_code == 200
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "forged": _crafted(forger),
        "expired": _crafted(key, exp=int(time.time()) - 60, iat=int(time.time()) - 700),
        "wrong audience": _crafted(key, aud="another-registry"),
        "wrong issuer": _crafted(key, iss="someone-else"),
        "no access claim": jwt.encode(
            {"iss": "harborpy-token-service", "aud": "harborpy", "iat": 1, "exp": 2**31},
            key,
            algorithm="RS256",
        ),
        "unsigned": jwt.encode(
            {"iss": "harborpy-token-service", "aud": "harborpy", "access": []},
            None,
            algorithm="none",
        ),
        "garbage": "not.a.token",
    }
    for what, value in refused.items():
        response = requests.get(url, headers=bearer(value))
        assert response.status_code == 401, what
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED", what
    # a token for repository A does not open repository B
    for_other = _crafted(
        key, access=[{"type": "repository", "name": "secret/x", "actions": ["pull"]}]
    )
    assert requests.get(url, headers=bearer(for_other)).status_code == 401


def test_the_signing_key_is_generated_under_the_data_folder(registry) -> None:
    path = registry.data / "token_signing_key.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")


# --- Basic auth on /v2/, robots ---------------------------------------------------------------


def test_basic_auth_with_a_wrong_password_is_refused(registry, users) -> None:
    response = requests.get(f"{registry.url}/v2/", auth=("dave", "wrong"))
    assert_error(response, 401, "UNAUTHORIZED")
    assert "realm" in challenge_of(response)
    malformed = requests.get(f"{registry.url}/v2/", headers={"Authorization": "Basic !!!"})
    assert_error(malformed, 401, "UNAUTHORIZED")
    odd = requests.get(f"{registry.url}/v2/", headers={"Authorization": "Digest x"})
    assert_error(odd, 401, "UNAUTHORIZED")


def test_a_changed_password_stops_working_at_once(registry, users) -> None:
    assert requests.get(f"{registry.url}/v2/", auth=as_user("dave")).status_code == 200
    user = get_user_model().objects.get(username="dave")
    user.set_password("another-password-2")
    user.save()
    assert requests.get(f"{registry.url}/v2/", auth=as_user("dave")).status_code == 401
    user.is_active = False
    user.save()
    assert (
        requests.get(f"{registry.url}/v2/", auth=("dave", "another-password-2")).status_code == 401
    )


def _robot(project, actions, **extra):
    robot, secret = robot_create(
        name=extra.pop("name", "ci"),
        permissions=[{"project": project.name, "actions": actions}],
        project=project,
        actor=SYSTEM,
        **extra,
    )
    return robot, (robot.name, secret)


def test_robots_act_within_their_permission_list(registry, users) -> None:
    push_image(registry, "secret/app", "v1")
    push_image(registry, "other/app", "v1")
    robot, auth = _robot(users, ["pull", "push"])
    assert requests.get(f"{registry.url}/v2/secret/app/manifests/v1", auth=auth).status_code == 200
    assert (
        requests.post(f"{registry.url}/v2/secret/app/blobs/uploads/", auth=auth).status_code == 202
    )
    denied = requests.delete(f"{registry.url}/v2/secret/app/manifests/v1", auth=auth)
    assert_error(denied, 403, "DENIED")
    # a robot of project A on project B
    elsewhere = requests.get(f"{registry.url}/v2/other/app/manifests/v1", auth=auth)
    assert_error(elsewhere, 403, "DENIED")
    # rotated, disabled, expired: refused
    from rbac.robots import robot_refresh_secret, robot_set_disabled

    robot_set_disabled(robot=robot, disabled=True, actor=SYSTEM)
    assert requests.get(f"{registry.url}/v2/", auth=auth).status_code == 401
    robot_set_disabled(robot=robot, disabled=False, actor=SYSTEM)
    assert requests.get(f"{registry.url}/v2/", auth=auth).status_code == 200
    new_secret = robot_refresh_secret(robot=robot, actor=SYSTEM)
    assert requests.get(f"{registry.url}/v2/", auth=auth).status_code == 401
    assert requests.get(f"{registry.url}/v2/", auth=(robot.name, new_secret)).status_code == 200
    robot.expires_at = timezone.now() - timedelta(seconds=1)
    robot.save()
    expired = requests.get(f"{registry.url}/v2/", auth=(robot.name, new_secret))
    assert_error(expired, 401, "UNAUTHORIZED")
    assert "expired" in expired.json()["errors"][0]["message"]


def test_a_mount_from_a_repository_the_principal_cannot_pull_uploads_instead(
    registry, users
) -> None:
    digest = push_blob(registry, "other/app", b"private bytes")
    url = f"{registry.url}/v2/secret/app/blobs/uploads/"
    params = {"mount": digest, "from": "other/app"}
    attempt = requests.post(url, params=params, auth=as_user("dave"))
    assert attempt.status_code == 202  # an ordinary upload: nothing mounted, nothing told
    assert (
        requests.head(
            f"{registry.url}/v2/secret/app/blobs/{digest}", auth=as_user("dave")
        ).status_code
        == 404
    )
    # with pull on the source the mount happens
    binding_set(
        project=Project.objects.get(name="other"),
        subject=Subject("user", "dave"),
        role=Role.GUEST,
        actor=SYSTEM,
    )
    mounted = requests.post(url, params=params, auth=as_user("dave"))
    assert mounted.status_code == 201 and mounted.headers["Docker-Content-Digest"] == digest


def test_manifest_put_needs_push(registry, users) -> None:
    response = requests.put(
        f"{registry.url}/v2/secret/app/manifests/v1",
        data=b"{}",
        headers={"Content-Type": DOCKER_MANIFEST},
        auth=as_user("gus"),
    )
    assert_error(response, 403, "DENIED")
