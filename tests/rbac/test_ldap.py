"""LDAP team logins (django-auth-ldap) against a real slapd: users, groups, roles, admins.

The directory is .ci/ldap/seed.ldif: alice (dev-team, ops-team), bob (ops-team; qa-team and
ci-team for the other group types), carol (registry-admins, the system admin group).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured

from audit.models import AuditEntry
from audit.services import SYSTEM
from harborpy.settings import LDAP_BACKEND, MODEL_BACKEND, ldap_settings
from projects.services import project_create
from rbac.bindings import Subject, binding_set
from rbac.credentials import principal_for_user
from rbac.exceptions import LoginFailed, LoginThrottled
from rbac.policy import Resource, authorize_scope
from rbac.roles import Role
from rbac.services import user_authenticate
from tests.fixtures.clients import Cli, CommandError, SampleImages
from tests.fixtures.ldap import LdapServer, apply_ldap_settings
from tests.fixtures.server import free_port, start_server

SOURCE = "10.1.1.1"


@pytest.fixture(autouse=True)
def _no_failures_counted_yet():
    """Failure counts live in the shared cache (Redis or files): start each test clean."""
    from django.core.cache import cache

    cache.clear()


def login(username: str, password: str, source: str = SOURCE):
    return user_authenticate(username=username, password=password, source=source)


def groups_of(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


# --- settings ------------------------------------------------------------------------------------


def test_ldap_is_off_unless_a_uri_is_set():
    assert ldap_settings({}) == {}
    assert ldap_settings({"HARBORPY_LDAP_USER_BASE": "ou=people,dc=x"}) == {}


def test_ldap_settings_from_the_environment():
    import ldap
    from django_auth_ldap.config import GroupOfUniqueNamesType

    built = ldap_settings(
        {
            "HARBORPY_LDAP_URI": "ldap://ldap.example.org",
            "HARBORPY_LDAP_USER_BASE": "ou=people,dc=x",
            "HARBORPY_LDAP_GROUP_BASE": "ou=groups,dc=x",
            "HARBORPY_LDAP_GROUP_TYPE": "groupOfUniqueNames",
            "HARBORPY_LDAP_START_TLS": "true",
            "HARBORPY_LDAP_TIMEOUT": "2.5",
        }
    )
    assert built["AUTHENTICATION_BACKENDS"] == [LDAP_BACKEND, MODEL_BACKEND]
    assert built["AUTH_LDAP_START_TLS"] is True
    assert built["AUTH_LDAP_USER_SEARCH"].filterstr == "(uid=%(user)s)"
    assert isinstance(built["AUTH_LDAP_GROUP_TYPE"], GroupOfUniqueNamesType)
    assert built["AUTH_LDAP_GROUP_SEARCH"].filterstr == "(objectClass=groupOfUniqueNames)"
    assert built["AUTH_LDAP_CONNECTION_OPTIONS"][ldap.OPT_NETWORK_TIMEOUT] == 2.5
    assert built["AUTH_LDAP_MIRROR_GROUPS"] is True
    assert "AUTH_LDAP_USER_FLAGS_BY_GROUP" not in built
    no_groups = ldap_settings(
        {"HARBORPY_LDAP_URI": "ldap://h", "HARBORPY_LDAP_USER_BASE": "ou=people,dc=x"}
    )
    assert "AUTH_LDAP_GROUP_SEARCH" not in no_groups and "AUTH_LDAP_MIRROR_GROUPS" not in no_groups


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"HARBORPY_LDAP_USER_BASE": ""}, "HARBORPY_LDAP_USER_BASE"),
        ({"HARBORPY_LDAP_GROUP_TYPE": "nisNetgroup"}, "HARBORPY_LDAP_GROUP_TYPE"),
        ({"HARBORPY_LDAP_TIMEOUT": "soon"}, "HARBORPY_LDAP_TIMEOUT"),
        ({"HARBORPY_LDAP_TIMEOUT": "0"}, "HARBORPY_LDAP_TIMEOUT"),
        ({"HARBORPY_LDAP_GROUP_BASE": "", "HARBORPY_LDAP_ADMIN_GROUP": "cn=a"}, "GROUP_BASE"),
    ],
)
def test_unusable_ldap_settings_are_refused(extra, message):
    env = {
        "HARBORPY_LDAP_URI": "ldap://h",
        "HARBORPY_LDAP_USER_BASE": "ou=people,dc=x",
        "HARBORPY_LDAP_GROUP_BASE": "ou=groups,dc=x",
        **extra,
    }
    with pytest.raises(ImproperlyConfigured, match=message):
        ldap_settings(env)


# --- logins --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_first_login_creates_the_user_with_names_and_mail(ldap_logins):
    User = get_user_model()
    assert not User.objects.filter(username="alice").exists()
    alice = login("alice", "alicepw")
    assert (alice.first_name, alice.last_name, alice.email) == (
        "Alice",
        "Liddell",
        "alice@example.org",
    )
    assert not alice.has_usable_password(), "the directory keeps the password"
    assert not alice.is_superuser and not alice.is_staff
    assert login("alice", "alicepw").pk == alice.pk, "the next login finds the same user"
    assert User.objects.filter(username="alice").count() == 1
    results = AuditEntry.objects.filter(action="login").values_list("detail", flat=True)
    assert [d["result"] for d in results] == ["ok", "ok"]


@pytest.mark.django_db
def test_wrong_passwords_and_unknown_users_fail_and_are_throttled(ldap_logins, settings):
    settings.HARBORPY_LOGIN_MAX_FAILURES = 2
    for name, password in (("alice", "wrong"), ("alice", ""), ("mallory", "alicepw")):
        with pytest.raises(LoginFailed):
            login(name, password, source="10.9.9.9")
    with pytest.raises(LoginFailed):
        login("mallory", "x", source="10.9.9.9")
    # refused now even with the right password, from that address only
    with pytest.raises(LoginThrottled):
        login("alice", "alicepw", source="10.9.9.9")
    with pytest.raises(LoginThrottled):
        login("mallory", "x", source="10.9.9.9")
    assert login("alice", "alicepw", source="10.9.9.8").username == "alice"
    assert not get_user_model().objects.filter(username="mallory").exists()


@pytest.mark.django_db
def test_local_accounts_keep_working(ldap_logins):
    get_user_model().objects.create_user("localdev", password="Local-Secret-1")
    assert login("localdev", "Local-Secret-1").username == "localdev"
    with pytest.raises(LoginFailed):
        login("localdev", "wrong")


# --- groups --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_groups_are_mirrored_by_cn(ldap_logins):
    assert groups_of(login("alice", "alicepw")) == {"dev-team", "ops-team"}
    assert groups_of(login("bob", "bobpw")) == {"ops-team"}
    assert groups_of(login("carol", "carolpw")) == {"registry-admins"}


@pytest.mark.django_db
def test_membership_changes_in_the_directory_show_at_the_next_login(ldap_logins):
    server: LdapServer = ldap_logins
    assert groups_of(login("bob", "bobpw")) == {"ops-team"}
    server.add_member("dev-team", "bob")
    try:
        assert groups_of(login("bob", "bobpw")) == {"dev-team", "ops-team"}
    finally:
        server.remove_member("dev-team", "bob")
    assert groups_of(login("bob", "bobpw")) == {"ops-team"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("group_type", "groups"),
    [
        ("groupOfNames", {"ops-team"}),
        ("groupOfUniqueNames", {"qa-team"}),
        ("posixGroup", {"ci-team"}),
    ],
)
def test_each_group_type(ldap_server, settings, group_type, groups):
    apply_ldap_settings(settings, {**ldap_server.env, "HARBORPY_LDAP_GROUP_TYPE": group_type})
    assert groups_of(login("bob", "bobpw")) == groups


@pytest.mark.django_db
def test_a_group_binding_gives_its_members_the_role(ldap_logins):
    project = project_create(name="team-private", public=False)
    # bound before any member logged in: the group exists from the binding on
    binding_set(
        project=project, subject=Subject("group", "dev-team"), role=Role.DEVELOPER, actor=SYSTEM
    )
    repository = Resource("repository", "team-private/app")
    alice = principal_for_user(login("alice", "alicepw"))
    assert authorize_scope(alice, repository, "push").allowed
    assert authorize_scope(alice, repository, "pull").allowed
    assert not authorize_scope(alice, repository, "delete").allowed  # developers don't delete
    bob = principal_for_user(login("bob", "bobpw"))
    assert not authorize_scope(bob, repository, "push").allowed
    assert not authorize_scope(bob, repository, "pull").allowed


@pytest.mark.django_db
def test_the_admin_group_makes_system_admins(ldap_logins):
    server: LdapServer = ldap_logins
    carol = login("carol", "carolpw")
    assert carol.is_superuser and carol.is_staff
    assert principal_for_user(carol).is_admin
    assert not login("alice", "alicepw").is_superuser
    bob = login("bob", "bobpw")
    assert not bob.is_superuser
    server.add_member("registry-admins", "bob")
    try:
        assert login("bob", "bobpw").is_superuser
    finally:
        server.remove_member("registry-admins", "bob")
    bob = login("bob", "bobpw")
    assert not bob.is_superuser and not bob.is_staff, "leaving the group takes admin away"


# --- an unreachable directory --------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unreachable_directory_fails_the_login_cleanly(ldap_server, settings, client):
    down = {**ldap_server.env, "HARBORPY_LDAP_URI": f"ldap://127.0.0.1:{free_port()}"}
    apply_ldap_settings(settings, down)
    get_user_model().objects.create_user("localdev", password="Local-Secret-1")
    started = time.monotonic()
    with pytest.raises(LoginFailed):
        login("alice", "alicepw")
    assert time.monotonic() - started < 5
    assert login("localdev", "Local-Secret-1").username == "localdev", "local accounts still work"
    basic = base64.b64encode(b"alice:alicepw").decode()
    response = client.get(
        "/service/token",
        {"service": "harborpy", "scope": "repository:library/app:pull"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 401, response.content
    response = client.get("/v2/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 401, response.content


@pytest.mark.django_db
def test_a_directory_that_never_answers_fails_the_login_after_the_timeout(ldap_server, settings):
    with socket.socket() as silent:  # accepts connections (the kernel does), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        env = {
            **ldap_server.env,
            "HARBORPY_LDAP_URI": f"ldap://127.0.0.1:{port}",
            "HARBORPY_LDAP_TIMEOUT": "1",
        }
        apply_ldap_settings(settings, env)
        started = time.monotonic()
        with pytest.raises(LoginFailed):
            login("alice", "alicepw")
        assert time.monotonic() - started < 4


@pytest.mark.django_db
def test_start_tls_against_a_directory_without_tls_fails_the_login(ldap_server, settings):
    apply_ldap_settings(settings, {**ldap_server.env, "HARBORPY_LDAP_START_TLS": "true"})
    with pytest.raises(LoginFailed):
        login("alice", "alicepw")
    assert not get_user_model().objects.filter(username="alice").exists()


# --- end to end: docker against a live server ----------------------------------------------------


@pytest.mark.clients
@pytest.mark.django_db(transaction=True)
def test_docker_login_push_pull_as_directory_users(
    ldap_server: LdapServer, dockerd: Cli, sample_images: SampleImages, tmp_path
):
    project = project_create(name="team-docker", public=False)
    binding_set(
        project=project, subject=Subject("group", "dev-team"), role=Role.DEVELOPER, actor=SYSTEM
    )
    server = start_server(tmp_path / "server", env=ldap_server.env)
    host = server.host
    try:
        dockerd("load", "-i", sample_images.archive)
        loaded = sample_images.archive_ref
        ref = f"{host}/team-docker/app:1"
        dockerd("tag", loaded, ref)
        dockerd("login", host, "-u", "alice", "-p", "alicepw")
        dockerd("push", ref)
        dockerd("rmi", ref)
        dockerd("pull", ref)
        pulled = dockerd.json("image", "inspect", ref)[0]
        assert pulled["Id"] == sample_images.single.config_digest

        dockerd("login", host, "-u", "bob", "-p", "bobpw")
        denied = f"{host}/team-docker/bob:1"
        dockerd("tag", loaded, denied)
        with pytest.raises(CommandError) as push:
            dockerd("push", denied)
        assert "denied" in push.value.stderr.lower() + push.value.stdout.lower()
        dockerd("rmi", ref)
        with pytest.raises(CommandError):
            dockerd("pull", ref)
    finally:
        with contextlib.suppress(CommandError):
            dockerd("logout", host)
        with contextlib.suppress(CommandError):
            dockerd("rmi", f"{host}/team-docker/bob:1", f"{host}/team-docker/app:1")
        server.stop()
    assert get_user_model().objects.get(username="alice").email == "alice@example.org"


@pytest.mark.django_db
def test_a_directory_entry_cannot_log_in_as_a_local_account(ldap_logins) -> None:
    """alice exists locally with her own password: the directory's alice is not asked."""
    from django.contrib.auth import get_user_model

    from rbac.exceptions import LoginFailed
    from rbac.services import user_authenticate

    local = get_user_model().objects.create_user(username="Alice", password="local-pw-123")
    with pytest.raises(LoginFailed):
        user_authenticate(username="alice", password="alicepw", source="192.0.2.9")
    assert user_authenticate(username="Alice", password="local-pw-123", source="192.0.2.9") == local
    local.refresh_from_db()
    assert (local.email, local.is_superuser) == ("", False)  # untouched by the directory
