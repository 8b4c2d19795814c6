"""A private project with one user per role, for the repository, artifact and label tests.

Import the fixtures into a test module: ``from tests.api.team import team_fixture, ...``
(registered as ``team``; the other name keeps linters from seeing a redefinition).
"""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth import get_user_model

from audit.services import SYSTEM
from projects.models import Project
from rbac.bindings import Subject, binding_set
from rbac.roles import Role
from tests.fixtures.server import ADMIN, LiveServer

PASSWORD = "api-team-pw-1"
ROLES = {
    "pat": Role.PROJECT_ADMIN,
    "max": Role.MAINTAINER,
    "dev": Role.DEVELOPER,
    "gus": Role.GUEST,
    "lim": Role.LIMITED_GUEST,
}


@pytest.fixture(scope="session", name="team_password_hash")
def team_password_hash_fixture() -> str:
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


@pytest.fixture(name="team")
def team_fixture(registry, team_password_hash) -> Project:
    """Private project ``team`` with pat, max, dev, gus and lim in the roles above; ``out``
    belongs nowhere."""
    project = Project.objects.create(name="team", public=False)
    User = get_user_model()
    for name, role in ROLES.items():
        User.objects.create(username=name, password=team_password_hash)
        binding_set(project=project, subject=Subject("user", name), role=role, actor=SYSTEM)
    User.objects.create(username="out", password=team_password_hash)
    return project


def as_(name: str) -> tuple[str, str] | None:
    if name == "anonymous":
        return None
    return ADMIN if name == "admin" else (name, PASSWORD)


def api(registry: LiveServer, path: str) -> str:
    return f"{registry.url}/api/v2.0/{path}"


def call(
    registry: LiveServer, method: str, path: str, who: str = "admin", **kwargs
) -> requests.Response:
    return requests.request(method, api(registry, path), auth=as_(who), timeout=30, **kwargs)


def errors(response: requests.Response) -> list[str]:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return [e["code"] for e in response.json()["errors"]]
