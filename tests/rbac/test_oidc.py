"""OIDC single sign-on against a real provider (oidc-provider-mock) and a live harborpy.

The provider runs in a thread on ``localhost``, harborpy under gunicorn on
``127.0.0.1``: cookies ignore ports, so two different host names keep their
session cookies apart.  Each harborpy here has a database of its own.  The
mock asks for no password: its login form takes the ``sub`` to log in as.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import oidc_provider_mock
import pytest
import requests

from tests.fixtures.clients import Cli, CommandError, SampleImages
from tests.fixtures.server import (
    LiveServer,
    harborpy_command,
    isolated_database,
    start_server,
)

ADMIN_GROUP = "registry-admins"

USERS = [
    oidc_provider_mock.User(
        sub="sub-alice",
        claims={
            "preferred_username": "alice",
            "email": "alice@example.org",
            "groups": ["dev-team", "ops-team"],
        },
    ),
    oidc_provider_mock.User(
        sub="sub-bob", claims={"preferred_username": "bob", "groups": [ADMIN_GROUP]}
    ),
    oidc_provider_mock.User(sub="sub-carol", claims={"preferred_username": "carol"}),
    oidc_provider_mock.User(
        sub="sub-dora", claims={"preferred_username": "dora", "groups": ["dev-team", "ops-team"]}
    ),
    oidc_provider_mock.User(sub="sub-erin", claims={"preferred_username": "erin"}),
    oidc_provider_mock.User(sub="sub-frank", claims={"preferred_username": "frank"}),
    oidc_provider_mock.User(sub="sub-mallory", claims={"preferred_username": "admin"}),
    oidc_provider_mock.User(
        sub="sub-pusher", claims={"preferred_username": "pusher", "groups": ["builders"]}
    ),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The OIDC provider's issuer URL."""
    with oidc_provider_mock.run_server_in_thread(user_claims=USERS) as server:
        yield f"http://localhost:{server.server_port}"


def oidc_env(provider: str, **extra: str) -> dict[str, str]:
    return {
        "HARBORPY_OIDC_ENDPOINT": provider,
        "HARBORPY_OIDC_CLIENT_ID": "harborpy-tests",
        "HARBORPY_OIDC_CLIENT_SECRET": "harborpy-tests-secret",
        "HARBORPY_OIDC_NAME": "Test IdP",
        **extra,
    }


def _serve(name: str, env: dict[str, str], django_db_blocker, tmp_path_factory) -> Iterator:
    data = tmp_path_factory.mktemp(name)
    with django_db_blocker.unblock(), isolated_database(name, data) as url:
        server = start_server(data, database=url, env=env)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def sso_registry(django_db_setup, django_db_blocker, tmp_path_factory, provider):
    """harborpy with SSO on, new accounts at first login, and an admin group."""
    env = oidc_env(provider, HARBORPY_OIDC_ADMIN_GROUP=ADMIN_GROUP)
    yield from _serve("oidc", env, django_db_blocker, tmp_path_factory)


@pytest.fixture(scope="module")
def closed_registry(django_db_setup, django_db_blocker, tmp_path_factory, provider):
    """harborpy with SSO on for existing accounts only (HARBORPY_OIDC_AUTO_ONBOARD=false)."""
    env = oidc_env(provider, HARBORPY_OIDC_AUTO_ONBOARD="false")
    yield from _serve("oidc_closed", env, django_db_blocker, tmp_path_factory)


def sso_login(
    server: LiveServer, provider: str, sub: str
) -> tuple[requests.Session, requests.Response]:
    """The browser's authorization-code flow; returns the session and the page it ends on."""
    session = requests.Session()
    page = session.get(f"{server.url}/login/")
    assert page.status_code == 200
    assert 'action="/login/oidc/"' in page.text, "the login page offers SSO"
    form = session.post(
        f"{server.url}/login/oidc/", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}
    )
    assert form.status_code == 200 and form.url.startswith(f"{provider}/oauth2/authorize")
    return session, session.post(form.url, data={"sub": sub})


def logged_in(session: requests.Session, server: LiveServer) -> bool:
    profile = session.get(f"{server.url}/profile/", allow_redirects=False)
    return profile.status_code == 200


def profile_groups(page: requests.Response) -> list[str]:
    return re.findall(r'<span class="group">([^<]*)</span>', page.text)


def cli_secret(page: requests.Response) -> str:
    found = re.search(r'<code id="cli-secret">([^<]+)</code>', page.text)
    assert found, page.text
    return found.group(1)


def server_python(server: LiveServer, code: str) -> str:
    """Run Python in ``harborpy shell`` against the server's database; its output."""
    return harborpy_command(server, "shell", "--no-imports", "-c", code).strip()


def audit_entries(server: LiveServer, action: str) -> list[dict]:
    """The server's audit entries of one kind, oldest first."""
    out = server_python(
        server,
        "import json; from audit.models import AuditEntry as E; print(json.dumps(list("
        f"E.objects.filter(action={action!r}).order_by('id')"
        ".values('actor', 'source', 'resource', 'detail'))))",
    )
    return json.loads(out)


def token_status(server: LiveServer, name: str, secret: str) -> int:
    response = requests.get(
        f"{server.url}/service/token", params={"service": "harborpy"}, auth=(name, secret)
    )
    return response.status_code


# --- the flow -----------------------------------------------------------------------------------


def test_first_sso_login_creates_the_account(sso_registry: LiveServer, provider: str) -> None:
    session, page = sso_login(sso_registry, provider, "sub-alice")
    assert page.status_code == 200
    assert page.url == f"{sso_registry.url}/profile/"
    assert "<h1>alice</h1>" in page.text
    assert "alice@example.org" in page.text
    assert profile_groups(page) == ["dev-team", "ops-team"]
    assert "system admin" not in page.text
    secret = cli_secret(page)
    assert f"docker login {sso_registry.host} -u alice -p {secret}" in page.text

    # The account is named by the username claim; it has no password of its own...
    account = server_python(
        sso_registry,
        "from django.contrib.auth.models import User; u = User.objects.get(username='alice'); "
        "print(u.email, u.has_usable_password(), u.is_superuser, "
        "u.social_auth.get().provider, u.social_auth.get().uid, "
        "sorted(u.social_auth.get().extra_data))",
    )
    # ...and no tokens of the provider are kept.
    assert account == "alice@example.org False False oidc sub-alice []"
    assert {
        "actor": "alice",
        "source": "127.0.0.1",
        "resource": "user:alice",
        "detail": {"result": "ok", "method": "oidc", "new_account": True},
    } in audit_entries(sso_registry, "login")

    # Logging out ends the session.
    session.post(
        f"{sso_registry.url}/logout/", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}
    )
    assert not logged_in(session, sso_registry)
    # The next login finds the same account.
    session, page = sso_login(sso_registry, provider, "sub-alice")
    assert page.url == f"{sso_registry.url}/profile/"
    assert cli_secret(page) == secret
    assert (
        server_python(
            sso_registry,
            "from django.contrib.auth.models import User; "
            "print(User.objects.filter(username__startswith='alice').count())",
        )
        == "1"
    )


def test_groups_follow_the_claim_at_every_login(sso_registry: LiveServer, provider: str) -> None:
    _, page = sso_login(sso_registry, provider, "sub-dora")
    assert profile_groups(page) == ["dev-team", "ops-team"]
    # The provider now says dora is in one other group only.
    changed = requests.put(
        f"{provider}/users/sub-dora", json={"preferred_username": "dora", "groups": ["qa"]}
    )
    assert changed.status_code == 204
    _, page = sso_login(sso_registry, provider, "sub-dora")
    assert profile_groups(page) == ["qa"]
    # No groups claim at all: no groups.
    requests.put(f"{provider}/users/sub-dora", json={"preferred_username": "dora"})
    _, page = sso_login(sso_registry, provider, "sub-dora")
    assert profile_groups(page) == []
    assert "none" in page.text


def test_the_admin_group_makes_a_system_admin(sso_registry: LiveServer, provider: str) -> None:
    _, page = sso_login(sso_registry, provider, "sub-bob")
    assert profile_groups(page) == [ADMIN_GROUP]
    assert "system admin" in page.text
    secret = cli_secret(page)
    # A system admin may list the whole registry; others may not.
    catalog = requests.get(f"{sso_registry.url}/v2/_catalog", auth=("bob", secret))
    assert catalog.status_code == 200

    # Out of the group: no longer an admin at the next login.
    requests.put(f"{provider}/users/sub-bob", json={"preferred_username": "bob", "groups": []})
    _, page = sso_login(sso_registry, provider, "sub-bob")
    assert "system admin" not in page.text
    catalog = requests.get(f"{sso_registry.url}/v2/_catalog", auth=("bob", secret))
    assert catalog.status_code in (401, 403)
    changes = [
        entry["detail"]["change"]
        for entry in audit_entries(sso_registry, "user")
        if entry["resource"] == "user:bob"
    ]
    assert changes == ["system admin granted", "system admin revoked"]


def test_regenerating_the_cli_secret_invalidates_the_old_one(
    sso_registry: LiveServer, provider: str
) -> None:
    session, page = sso_login(sso_registry, provider, "sub-carol")
    old = cli_secret(page)
    assert token_status(sso_registry, "carol", old) == 200
    page = session.post(
        f"{sso_registry.url}/profile/cli-secret/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
    )
    assert page.status_code == 200 and page.url == f"{sso_registry.url}/profile/"
    assert "the old one no longer works" in page.text
    new = cli_secret(page)
    assert new != old
    assert token_status(sso_registry, "carol", old) == 401
    assert token_status(sso_registry, "carol", new) == 200
    # and it stays the secret shown
    assert cli_secret(session.get(f"{sso_registry.url}/profile/")) == new


def test_a_local_account_with_a_password_is_not_taken_over(
    sso_registry: LiveServer, provider: str
) -> None:
    session, page = sso_login(sso_registry, provider, "sub-mallory")  # claims to be "admin"
    assert page.status_code == 403
    assert "&#x27;admin&#x27; is a local account with a password" in page.text
    assert not logged_in(session, sso_registry)


def test_no_username_claim_is_refused(sso_registry: LiveServer, provider: str) -> None:
    # The mock gives subjects it does not know only an email claim.
    session, page = sso_login(sso_registry, provider, "stranger@example.org")
    assert page.status_code == 403
    assert "no &#x27;preferred_username&#x27; claim" in page.text
    assert not logged_in(session, sso_registry)


def test_a_login_denied_at_the_provider_fails_cleanly(
    sso_registry: LiveServer, provider: str
) -> None:
    session = requests.Session()
    session.get(f"{sso_registry.url}/login/")
    form = session.post(
        f"{sso_registry.url}/login/oidc/",
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
    )
    page = session.post(form.url, data={"action": "deny"})
    assert page.status_code == 403
    assert "Login failed" in page.text
    assert not logged_in(session, sso_registry)


def test_sso_starts_only_on_a_post_with_csrf(sso_registry: LiveServer) -> None:
    session = requests.Session()
    assert session.get(f"{sso_registry.url}/login/oidc/").status_code == 405
    session.get(f"{sso_registry.url}/login/")
    assert session.post(f"{sso_registry.url}/login/oidc/").status_code == 403


# --- auto-onboarding off ------------------------------------------------------------------------


def test_without_auto_onboarding_only_existing_accounts_log_in(
    closed_registry: LiveServer, provider: str
) -> None:
    session, page = sso_login(closed_registry, provider, "sub-erin")
    assert page.status_code == 403
    assert "There is no account &#x27;erin&#x27; here" in page.text
    assert not logged_in(session, closed_registry)
    assert (
        server_python(
            closed_registry,
            "from django.contrib.auth.models import User; "
            "print(User.objects.filter(username='erin').exists())",
        )
        == "False"
    )
    refusal = audit_entries(closed_registry, "login")[-1]
    assert (refusal["resource"], refusal["detail"]["result"]) == ("user:erin", "refused")

    # An account made for SSO (no password) beforehand is let in, and linked.
    server_python(
        closed_registry,
        "from django.contrib.auth.models import User; User.objects.create_user('frank')",
    )
    session, page = sso_login(closed_registry, provider, "sub-frank")
    assert page.status_code == 200 and "<h1>frank</h1>" in page.text
    assert logged_in(session, closed_registry)


# --- the CLI secret with real clients -----------------------------------------------------------


def docker_load(dockerd: Cli, archive: Path) -> str:
    names = re.findall(r"Loaded image: *(\S+)", dockerd("load", "-i", archive))
    assert names
    return str(names[-1])


@pytest.mark.clients
def test_docker_login_push_pull_with_the_cli_secret(
    sso_registry: LiveServer, provider: str, dockerd: Cli, sample_images: SampleImages
) -> None:
    # A private project, where the provider's group "builders" may push.
    harborpy_command(sso_registry, "project", "create", "builds")
    server_python(
        sso_registry,
        "from audit.services import SYSTEM; from projects.models import Project; "
        "from rbac.bindings import Subject, binding_set; from rbac.roles import Role; "
        "binding_set(project=Project.objects.get(name='builds'), "
        "subject=Subject('group', 'builders'), role=Role.DEVELOPER, actor=SYSTEM)",
    )
    _, page = sso_login(sso_registry, provider, "sub-pusher")
    assert profile_groups(page) == ["builders"]
    secret = cli_secret(page)
    host = sso_registry.host
    ref = f"{host}/builds/app:1"

    # The CLI secret also gets a token with Basic auth, as docker does.
    token = requests.get(
        f"{sso_registry.url}/service/token",
        params={"service": "harborpy", "scope": "repository:builds/app:pull,push"},
        auth=("pusher", secret),
    )
    assert token.status_code == 200 and token.json()["token"]

    loaded = docker_load(dockerd, sample_images.archive)
    dockerd("tag", loaded, ref)
    with pytest.raises(CommandError):  # not logged in: a private project
        dockerd("push", ref)
    with pytest.raises(CommandError):
        dockerd("login", host, "-u", "pusher", "-p", "not-the-secret")
    assert "Login Succeeded" in dockerd("login", host, "-u", "pusher", "-p", secret)
    try:
        out = dockerd("push", ref)
        assert re.search(r"digest: sha256:[0-9a-f]{64}", out), out
        dockerd("rmi", ref)
        dockerd("pull", ref)
        pulled = dockerd.json("image", "inspect", ref)[0]
        assert pulled["Id"] == sample_images.single.config_digest
    finally:
        dockerd("logout", host)
    dockerd("rmi", ref)
    with pytest.raises(CommandError):  # logged out again: the project stays private
        dockerd("pull", ref)
