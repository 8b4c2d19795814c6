"""The console's local login, logout and profile pages, on a live harborpy without SSO."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.fixtures.server import ADMIN_PASSWORD, LiveServer, isolated_database, start_server

MAX_FAILURES = 3


@pytest.fixture(scope="module")
def console(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("console")
    with django_db_blocker.unblock(), isolated_database("console", data) as url:
        server = start_server(
            data, database=url, env={"HARBORPY_LOGIN_MAX_FAILURES": str(MAX_FAILURES)}
        )
        try:
            yield server
        finally:
            server.stop()


def login_form(server: LiveServer) -> requests.Session:
    """A session that has the login page open (and so its CSRF cookie)."""
    session = requests.Session()
    page = session.get(f"{server.url}/login/")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    return session


def log_in(session: requests.Session, server: LiveServer, name: str, password: str, **extra):
    data = {"username": name, "password": password, **extra}
    data["csrfmiddlewaretoken"] = session.cookies["csrftoken"]
    return session.post(f"{server.url}/login/", data=data)


def profile(session: requests.Session, server: LiveServer) -> requests.Response:
    return session.get(f"{server.url}/profile/", allow_redirects=False)


def test_the_right_password_opens_a_session_and_the_profile(console: LiveServer) -> None:
    session = login_form(console)
    assert "/login/oidc/" not in session.get(f"{console.url}/login/").text, "no SSO button"
    page = log_in(session, console, "admin", ADMIN_PASSWORD)
    assert page.status_code == 200 and page.url == f"{console.url}/profile/"
    assert "<h1>admin</h1>" in page.text and "system admin" in page.text
    secret = re.search(r'<code id="cli-secret">([^<]+)</code>', page.text)
    assert secret, page.text
    assert f"docker login {console.host} -u admin -p {secret.group(1)}" in page.text
    assert "no-store" in page.headers["Cache-Control"], "a page with a secret is not cached"
    # The secret works as a password for registry clients.
    token = requests.get(f"{console.url}/service/token", auth=("admin", secret.group(1)))
    assert token.status_code == 200
    # ...but not for the console, as in Harbor: there only the password opens a session.
    other = login_form(console)
    assert log_in(other, console, "admin", secret.group(1)).status_code == 401
    assert "sessionid" not in other.cookies

    # Logging out needs a POST and ends the session.
    assert session.get(f"{console.url}/logout/").status_code == 405
    out = session.post(
        f"{console.url}/logout/", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}
    )
    assert out.url == f"{console.url}/login/"
    assert profile(session, console).status_code == 302


def test_a_wrong_password_shows_an_error_and_opens_no_session(console: LiveServer) -> None:
    session = login_form(console)
    page = log_in(session, console, "admin", "not-the-password")
    assert page.status_code == 401
    assert "Wrong user name or password." in page.text
    assert 'value="admin"' in page.text, "the name stays filled in"
    assert "sessionid" not in session.cookies
    redirect = profile(session, console)
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == "/login/?next=/profile/"


def test_repeated_failures_are_throttled_with_the_retry_time(console: LiveServer) -> None:
    session = login_form(console)
    for _ in range(MAX_FAILURES):
        assert log_in(session, console, "mallory", "guess").status_code == 401
    page = log_in(session, console, "mallory", "guess")
    assert page.status_code == 429
    assert "Too many failed logins; try again in 300 seconds." in page.text
    assert page.headers["Retry-After"] == "300"


def test_next_is_followed_only_within_the_site(console: LiveServer) -> None:
    session = login_form(console)
    page = log_in(session, console, "admin", ADMIN_PASSWORD, next="/healthz")
    assert page.url == f"{console.url}/healthz"
    session = login_form(console)
    page = log_in(session, console, "admin", ADMIN_PASSWORD, next="http://example.org/")
    assert page.url == f"{console.url}/profile/"


def test_posts_need_the_csrf_token(console: LiveServer) -> None:
    session = login_form(console)
    page = session.post(
        f"{console.url}/login/", data={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert page.status_code == 403
    assert profile(session, console).status_code == 302
