"""Local identity: the first-start admin, password hashing, throttled and audited logins."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEntry
from rbac.exceptions import LoginFailed, LoginThrottled
from rbac.services import admin_bootstrap, user_authenticate
from tests.fixtures.server import start_server


@pytest.fixture(autouse=True)
def _no_failures_counted_yet():
    """Failure counts live in the shared cache (Redis or files): start each test clean."""
    from django.core.cache import cache

    cache.clear()


def logins() -> list[tuple[str, str, str]]:
    return [
        (e.actor, e.source, e.detail["result"])
        for e in AuditEntry.objects.filter(action="login").order_by("id")
    ]


@pytest.mark.django_db
def test_the_admin_is_created_once_with_the_given_password():
    assert admin_bootstrap(password="Correct-Horse-9") is None  # nothing generated
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.password.startswith("argon2"), "passwords are hashed with Argon2"
    assert admin_bootstrap(password="another") is None
    assert user_authenticate(username="admin", password="Correct-Horse-9", source="1.2.3.4")


@pytest.mark.django_db
def test_without_a_password_one_is_generated():
    generated = admin_bootstrap()
    assert generated and len(generated) >= 20
    assert user_authenticate(username="admin", password=generated, source="1.2.3.4")


@pytest.mark.django_db
def test_failed_logins_are_throttled_per_account_and_address(settings):
    settings.HARBORPY_LOGIN_MAX_FAILURES = 3
    get_user_model().objects.create_user("alice", password="alice-secret-1")
    get_user_model().objects.create_user("bob", password="bob-secret-1")
    for _ in range(3):
        with pytest.raises(LoginFailed):
            user_authenticate(username="alice", password="wrong", source="10.0.0.1")
    # refused now, even with the right password...
    with pytest.raises(LoginThrottled) as throttled:
        user_authenticate(username="alice", password="alice-secret-1", source="10.0.0.1")
    assert throttled.value.retry_after == settings.HARBORPY_LOGIN_LOCKOUT
    # ...but only for that account from that address
    assert user_authenticate(username="alice", password="alice-secret-1", source="10.0.0.2")
    assert user_authenticate(username="bob", password="bob-secret-1", source="10.0.0.1")
    assert logins() == [
        ("alice", "10.0.0.1", "failed"),
        ("alice", "10.0.0.1", "failed"),
        ("alice", "10.0.0.1", "failed"),
        ("alice", "10.0.0.1", "throttled"),
        ("alice", "10.0.0.2", "ok"),
        ("bob", "10.0.0.1", "ok"),
    ]


@pytest.mark.django_db
def test_a_success_resets_the_count_and_a_disabled_account_cannot_log_in(settings):
    settings.HARBORPY_LOGIN_MAX_FAILURES = 2
    user = get_user_model().objects.create_user("carol", password="carol-secret-1")
    with pytest.raises(LoginFailed):
        user_authenticate(username="carol", password="wrong", source="10.0.0.3")
    assert user_authenticate(username="carol", password="carol-secret-1", source="10.0.0.3")
    with pytest.raises(LoginFailed):
        user_authenticate(username="carol", password="wrong", source="10.0.0.3")
    assert user_authenticate(username="carol", password="carol-secret-1", source="10.0.0.3")
    user.is_active = False
    user.save()
    with pytest.raises(LoginFailed):
        user_authenticate(username="carol", password="carol-secret-1", source="10.0.0.3")


def test_serve_prints_a_generated_admin_password_once(tmp_path):
    data = tmp_path / "var"
    server = start_server(data, embedded=True, env={"HARBORPY_ADMIN_PASSWORD": ""})
    server.stop()
    first = server.log_text()
    assert "Created the system admin 'admin' with the password" in first
    server = start_server(data, embedded=True, env={"HARBORPY_ADMIN_PASSWORD": ""})
    server.stop()
    both = first + server.log_text()  # each start logs to a file of its own
    assert both.count("Created the system admin") == 1, "printed only once"


def test_the_client_address_comes_from_trusted_proxies_only(rf, settings) -> None:
    from rbac.credentials import client_address

    request = rf.get("/v2/", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.7", REMOTE_ADDR="10.0.0.2")
    settings.HARBORPY_TRUSTED_PROXY_HOPS = 0
    assert client_address(request) == "10.0.0.2"  # the header is not trusted
    settings.HARBORPY_TRUSTED_PROXY_HOPS = 1
    assert client_address(request) == "10.0.0.7"  # what our proxy saw; 6.6.6.6 is forgeable
    settings.HARBORPY_TRUSTED_PROXY_HOPS = 2
    assert client_address(request) == "6.6.6.6"
    settings.HARBORPY_TRUSTED_PROXY_HOPS = 3  # fewer entries than proxies: the peer
    assert client_address(request) == "10.0.0.2"
