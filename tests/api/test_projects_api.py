"""/api/v2.0/projects, members, the current user, system info and health, over HTTP."""

from __future__ import annotations

import base64

import pytest
import requests
from django.contrib.auth import get_user_model

from audit.services import SYSTEM
from projects.models import Project
from rbac.bindings import Subject, binding_set, setting_set
from rbac.policy import PROJECT_CREATION
from rbac.roles import Role
from tests.distribution.helpers import push_image
from tests.fixtures.server import ADMIN

PASSWORD = "api-user-pw-1"


@pytest.fixture(scope="session")
def password_hash() -> str:
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


@pytest.fixture
def team(registry, password_hash):
    """Private project ``team``: pat (projectAdmin), dev (developer), gus (guest), lim
    (limitedGuest); out belongs nowhere."""
    project = Project.objects.create(name="team", public=False)
    User = get_user_model()
    for name, role in (
        ("pat", Role.PROJECT_ADMIN),
        ("dev", Role.DEVELOPER),
        ("gus", Role.GUEST),
        ("lim", Role.LIMITED_GUEST),
    ):
        User.objects.create(username=name, password=password_hash)
        binding_set(project=project, subject=Subject("user", name), role=role, actor=SYSTEM)
    User.objects.create(username="out", password=password_hash)
    return project


def api(registry, path: str) -> str:
    return f"{registry.url}/api/v2.0/{path}"


def as_(name: str) -> tuple[str, str]:
    return ADMIN if name == "admin" else (name, PASSWORD)


def errors(response) -> list[str]:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return [e["code"] for e in response.json()["errors"]]


# --- listing and visibility -----------------------------------------------------------------


def test_the_list_shows_what_the_caller_may_see(registry, team) -> None:
    names = lambda r: [p["name"] for p in r.json()]  # noqa: E731
    anonymous = requests.get(api(registry, "projects"), params={"page_size": 100})
    assert anonymous.status_code == 200
    assert "team" not in names(anonymous) and "library" in names(anonymous)
    member = requests.get(api(registry, "projects"), params={"page_size": 100}, auth=as_("gus"))
    assert "team" in names(member)
    [mine] = [p for p in member.json() if p["name"] == "team"]
    assert mine["current_user_role_id"] == 3 and mine["metadata"] == {"public": "false"}
    outsider = requests.get(api(registry, "projects"), params={"page_size": 100}, auth=as_("out"))
    assert "team" not in names(outsider)
    admin = requests.get(api(registry, "projects"), params={"page_size": 100}, auth=ADMIN)
    assert int(admin.headers["X-Total-Count"]) == Project.objects.count()


def test_pages_filters_and_their_errors(registry, team) -> None:
    total = Project.objects.count()
    first = requests.get(api(registry, "projects"), params={"page_size": 2}, auth=ADMIN)
    assert len(first.json()) == 2 and first.headers["X-Total-Count"] == str(total)
    assert 'rel="next"' in first.headers["Link"] and "page=2" in first.headers["Link"]
    second = requests.get(api(registry, "projects"), params={"page": 2, "page_size": 2}, auth=ADMIN)
    assert 'rel="prev"' in second.headers["Link"]
    assert {p["name"] for p in first.json()}.isdisjoint(p["name"] for p in second.json())
    capped = requests.get(api(registry, "projects"), params={"page_size": 1000}, auth=ADMIN)
    assert capped.status_code == 200 and len(capped.json()) == min(total, 100)
    fuzzy = requests.get(api(registry, "projects"), params={"q": "name=~ea"}, auth=ADMIN)
    assert [p["name"] for p in fuzzy.json()] == ["team"]
    exact = requests.get(api(registry, "projects"), params={"name": "lib"}, auth=ADMIN)
    assert [p["name"] for p in exact.json()] == ["lib"]
    public = requests.get(api(registry, "projects"), params={"q": "public=false"}, auth=ADMIN)
    assert [p["name"] for p in public.json()] == ["team"]
    for bad in ({"q": "colour=red"}, {"q": "name"}, {"page": "x"}, {"page_size": "0"}):
        response = requests.get(api(registry, "projects"), params=bad, auth=ADMIN)
        assert response.status_code == 400 and errors(response) == ["BAD_REQUEST"], bad


def test_a_private_project_is_not_found_by_outsiders(registry, team) -> None:
    for project in ("team", "nothere", str(team.pk)):
        response = requests.get(api(registry, f"projects/{project}"), auth=as_("out"))
        assert response.status_code == 404 and errors(response) == ["NOT_FOUND"]
        assert requests.get(api(registry, f"projects/{project}")).status_code == 401
    got = requests.get(api(registry, f"projects/{team.pk}"), auth=as_("lim")).json()
    assert (got["name"], got["current_user_role_ids"]) == ("team", [5])


# --- creating, changing, deleting -----------------------------------------------------------


def test_users_create_projects_and_own_them_unless_restricted(registry, team) -> None:
    created = requests.post(
        api(registry, "projects"),
        json={"project_name": "mine", "metadata": {"public": "true"}},
        auth=as_("out"),
    )
    assert created.status_code == 201
    project = Project.objects.get(name="mine")
    assert created.headers["Location"] == f"/api/v2.0/projects/{project.pk}"
    assert project.public and project.owner.username == "out"
    members = requests.get(api(registry, "projects/mine/members"), auth=as_("out")).json()
    assert [(m["entity_name"], m["role_name"]) for m in members] == [("out", "projectAdmin")]

    again = requests.post(api(registry, "projects"), json={"project_name": "mine"}, auth=ADMIN)
    assert again.status_code == 409 and errors(again) == ["CONFLICT"]
    bad = requests.post(api(registry, "projects"), json={"project_name": "Bad Name"}, auth=ADMIN)
    assert bad.status_code == 400
    assert requests.post(api(registry, "projects"), json={"project_name": "x"}).status_code == 401

    setting_set(key=PROJECT_CREATION, value="adminonly", actor=SYSTEM)
    refused = requests.post(api(registry, "projects"), json={"project_name": "x2"}, auth=as_("out"))
    assert refused.status_code == 403 and errors(refused) == ["FORBIDDEN"]
    allowed = requests.post(api(registry, "projects"), json={"project_name": "x2"}, auth=ADMIN)
    assert allowed.status_code == 201


def test_project_admins_change_visibility_only_admins_change_quotas(registry, team) -> None:
    url = api(registry, "projects/team")
    public = {"metadata": {"public": "true"}}
    assert requests.put(url, json=public, auth=as_("dev")).status_code == 403
    assert requests.put(url, json=public, auth=as_("pat")).status_code == 200
    quota = {"storage_limit": 1 << 30}
    refused = requests.put(url, json=quota, auth=as_("pat"))
    assert refused.status_code == 403  # Harbor: quotas belong to the system admin
    assert requests.put(url, json=quota, auth=ADMIN).status_code == 200
    team.refresh_from_db()
    assert team.public and team.quota_bytes == 1 << 30
    assert requests.put(url, json={"storage_limit": -1}, auth=ADMIN).status_code == 200
    team.refresh_from_db()
    assert team.public and team.quota_bytes is None


def test_only_an_empty_project_is_deleted(registry, team) -> None:
    push_image(registry, "team/app", "v1")
    url = api(registry, "projects/team")
    assert requests.delete(url, auth=as_("dev")).status_code == 403
    full = requests.delete(url, auth=as_("pat"))
    assert full.status_code == 412 and errors(full) == ["PRECONDITION_FAILED"]
    Project.objects.create(name="empty", public=False)
    assert requests.delete(api(registry, "projects/empty"), auth=ADMIN).status_code == 200
    assert not Project.objects.filter(name="empty").exists()


def test_the_summary_counts_members_and_storage(registry, team) -> None:
    pushed = push_image(registry, "team/app", "v1")
    summary = requests.get(api(registry, "projects/team/summary"), auth=as_("gus")).json()
    assert summary["repo_count"] == 1
    assert summary["quota"]["used"]["storage"] > 0 and summary["quota"]["hard"]["storage"] == -1
    assert summary["project_admin_count"] == 1 and summary["limited_guest_count"] == 1
    limited = requests.get(api(registry, "projects/team/summary"), auth=as_("lim")).json()
    assert "guest_count" not in limited  # a limited guest does not see who else is there
    assert pushed.digest


# --- members --------------------------------------------------------------------------------


def test_members_are_listed_added_changed_and_removed_by_the_table(registry, team) -> None:
    url = api(registry, "projects/team/members")
    assert requests.get(url, auth=as_("gus")).status_code == 200
    assert requests.get(url, auth=as_("lim")).status_code == 403  # limitedGuest listing
    new = {"role_id": 2, "member_user": {"username": "out"}}
    assert requests.post(url, json=new, auth=as_("dev")).status_code == 403
    added = requests.post(url, json=new, auth=as_("pat"))
    assert added.status_code == 201
    member_url = f"{registry.url}{added.headers['Location']}"
    member = requests.get(member_url, auth=as_("pat")).json()
    assert (member["entity_name"], member["entity_type"], member["role_name"]) == (
        "out",
        "u",
        "developer",
    )
    assert requests.post(url, json=new, auth=as_("pat")).status_code == 409
    unknown = {"role_id": 2, "member_user": {"username": "nobody"}}
    assert requests.post(url, json=unknown, auth=as_("pat")).status_code == 400
    assert requests.put(member_url, json={"role_id": 9}, auth=as_("pat")).status_code == 400
    assert requests.put(member_url, json={"role_id": 4}, auth=as_("pat")).status_code == 200
    assert requests.get(member_url, auth=as_("pat")).json()["role_name"] == "maintainer"
    filtered = requests.get(url, params={"entityname": "ou"}, auth=as_("pat")).json()
    assert [m["entity_name"] for m in filtered] == ["out"]
    assert requests.delete(member_url, auth=as_("pat")).status_code == 200
    assert requests.get(member_url, auth=as_("pat")).status_code == 404
    from django.contrib.auth.models import Group

    Group.objects.create(name="ops")
    group = {"role_id": 3, "member_group": {"group_name": "ops"}}
    assert requests.post(url, json=group, auth=as_("pat")).status_code == 201
    from audit.models import AuditEntry

    changes = AuditEntry.objects.filter(action="permission", resource="project:team")
    assert [e.actor for e in changes.order_by("id")][-4:] == ["pat"] * 4


# --- the caller, the service ----------------------------------------------------------------


def test_the_current_user_and_their_cli_secret(registry, team) -> None:
    me = requests.get(api(registry, "users/current"), auth=as_("dev")).json()
    assert (me["username"], me["sysadmin_flag"]) == ("dev", False)
    first = requests.get(api(registry, "users/current/cli_secret"), auth=as_("dev")).json()[
        "secret"
    ]
    assert requests.get(f"{registry.url}/v2/", auth=("dev", first)).status_code == 200
    second = requests.post(api(registry, "users/current/cli_secret"), auth=as_("dev")).json()
    assert second["secret"] != first
    assert requests.get(f"{registry.url}/v2/", auth=("dev", first)).status_code == 401
    assert requests.get(api(registry, "users/current")).status_code == 401


def test_system_info_and_health_are_open(registry) -> None:
    info = requests.get(api(registry, "systeminfo")).json()
    assert info["auth_mode"] == "db_auth" and "project_creation_restriction" not in info
    logged_in = requests.get(api(registry, "systeminfo"), auth=ADMIN).json()
    assert logged_in["project_creation_restriction"] == "everyone"
    health = requests.get(api(registry, "health"))
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert {c["name"]: c["status"] for c in body["components"]} == {
        "database": "healthy",
        "cache": "healthy",
        "storage": "healthy",
    }


def test_bad_credentials_and_sessions_without_csrf_are_refused(registry, team) -> None:
    wrong = requests.get(api(registry, "users/current"), auth=("dev", "nope"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    basic = base64.b64encode(b"dev:" + PASSWORD.encode()).decode()
    ok = requests.get(api(registry, "users/current"), headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200


@pytest.mark.django_db
def test_the_project_list_costs_a_fixed_number_of_queries(
    admin_client, django_assert_max_num_queries
) -> None:
    for n in range(60):
        Project.objects.create(name=f"p{n:02d}", public=n % 2 == 0)
    admin_client.get("/api/v2.0/projects")  # the first call verifies the password
    with django_assert_max_num_queries(4):
        response = admin_client.get("/api/v2.0/projects?page_size=50")
    assert response.status_code == 200 and len(response.json()) == 50
