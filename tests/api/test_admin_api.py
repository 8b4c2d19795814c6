"""The system admin's API over HTTP: users, groups, audit logs, quotas, statistics, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.models import AuditEntry
from audit.services import SYSTEM, Actor, audit_record
from projects.models import Project
from tests.api.test_projects_api import PASSWORD, api, as_, errors, password_hash, team  # noqa: F401
from tests.distribution.helpers import push_image
from tests.fixtures.server import ADMIN

STRONG = "Correct-Horse-Battery-9"

ADMIN_ONLY = [
    ("get", "users"),
    ("post", "users"),
    ("get", "users/1"),
    ("put", "users/1"),
    ("delete", "users/1"),
    ("put", "users/1/sysadmin"),
    ("put", "users/1/password"),
    ("get", "usergroups"),
    ("post", "usergroups"),
    ("get", "usergroups/1"),
    ("put", "usergroups/1"),
    ("delete", "usergroups/1"),
    ("get", "audit-logs"),
    ("get", "audit-logs/verify"),
    ("get", "quotas"),
    ("get", "quotas/1"),
    ("put", "quotas/1"),
    ("get", "configurations"),
    ("put", "configurations"),
]


def user_id(name: str) -> int:
    return get_user_model().objects.get(username=name).pk


def audit_changes(action: str, resource: str) -> list[tuple[str, str]]:
    rows = AuditEntry.objects.filter(action=action, resource=resource).order_by("id")
    return [(e.actor, e.detail.get("change", "")) for e in rows]


@pytest.mark.usefixtures("team")
def test_admin_endpoints_refuse_others(registry) -> None:
    """Non-admins get 403 (with Harbor's error body); anonymous callers 401."""
    for method, path in ADMIN_ONLY:
        path = path.replace("/1", f"/{user_id('gus')}") if path.startswith("users/") else path
        denied = requests.request(method, api(registry, path), json={}, auth=as_("pat"))
        assert denied.status_code == 403, (method, path, denied.text)
        assert errors(denied) == ["FORBIDDEN"]
        anonymous = requests.request(method, api(registry, path), json={})
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    for path in ("users/search?username=p", "usergroups/search?groupname=x", "statistics"):
        assert requests.get(api(registry, path)).status_code == 401


# --- users ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("team")
def test_the_admin_creates_lists_and_changes_users(registry) -> None:
    url = api(registry, "users")
    weak = requests.post(url, json={"username": "neo", "password": "abc"}, auth=ADMIN)
    assert weak.status_code == 400 and len(errors(weak)) >= 1
    assert "too short" in weak.text
    for bad in ("robot$neo", "ne:o", ""):
        response = requests.post(url, json={"username": bad, "password": STRONG}, auth=ADMIN)
        assert response.status_code == 400, bad
    new = {"username": "neo", "password": STRONG, "email": "neo@example.org", "realname": "Neo"}
    created = requests.post(url, json=new, auth=ADMIN)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/api/v2.0/users/{user_id('neo')}"
    assert requests.post(url, json=new, auth=ADMIN).status_code == 409
    assert requests.post(url, json={**new, "username": "NEO"}, auth=ADMIN).status_code == 409
    me = requests.get(api(registry, "users/current"), auth=("neo", STRONG)).json()
    assert (me["username"], me["email"], me["realname"]) == ("neo", "neo@example.org", "Neo")

    page = requests.get(url, params={"page_size": 2}, auth=ADMIN)
    total = get_user_model().objects.count()
    assert page.headers["X-Total-Count"] == str(total) and len(page.json()) == 2
    found = requests.get(url, params={"q": "email=~example.org"}, auth=ADMIN).json()
    assert [u["username"] for u in found] == ["neo"]
    assert [
        u["username"] for u in requests.get(url, params={"username": "gus"}, auth=ADMIN).json()
    ] == ["gus"]

    one = api(registry, f"users/{user_id('neo')}")
    assert requests.put(one, json={"realname": "Thomas"}, auth=ADMIN).status_code == 200
    assert requests.get(one, auth=ADMIN).json()["realname"] == "Thomas"
    assert requests.put(one, json={"email": "not-mail"}, auth=ADMIN).status_code == 400
    assert requests.get(api(registry, "users/999999"), auth=ADMIN).status_code == 404
    assert audit_changes("user", "user:neo") == [("admin", "created"), ("admin", "updated")]


@pytest.mark.usefixtures("team")
def test_sysadmin_flag_makes_an_admin_but_not_of_oneself(registry) -> None:
    flag = api(registry, f"users/{user_id('dev')}/sysadmin")
    assert requests.get(api(registry, "users"), auth=as_("dev")).status_code == 403
    assert requests.put(flag, json={"sysadmin_flag": True}, auth=ADMIN).status_code == 200
    assert requests.get(api(registry, "users"), auth=as_("dev")).status_code == 200
    own = api(registry, f"users/{user_id('admin')}/sysadmin")
    refused = requests.put(own, json={"sysadmin_flag": False}, auth=ADMIN)
    assert refused.status_code == 403 and "own" in refused.text
    assert requests.put(flag, json={"sysadmin_flag": "maybe"}, auth=ADMIN).status_code == 400
    assert requests.put(flag, json={"sysadmin_flag": False}, auth=ADMIN).status_code == 200
    assert requests.get(api(registry, "users"), auth=as_("dev")).status_code == 403
    assert audit_changes("user", "user:dev") == [("admin", "promoted"), ("admin", "demoted")]


@pytest.mark.usefixtures("team")
def test_passwords_are_changed_by_their_owner_with_the_old_one_or_by_the_admin(registry) -> None:
    url = api(registry, f"users/{user_id('dev')}/password")
    missing = requests.put(url, json={"new_password": STRONG}, auth=as_("dev"))
    assert missing.status_code == 400
    assert missing.json()["errors"] == [
        {"code": "BAD_REQUEST", "message": "old_password: required to change your own"}
    ]
    wrong = requests.put(url, json={"old_password": "x", "new_password": STRONG}, auth=as_("dev"))
    assert wrong.status_code == 403
    weak = requests.put(url, json={"old_password": PASSWORD, "new_password": "1"}, auth=as_("dev"))
    assert weak.status_code == 400
    other = api(registry, f"users/{user_id('gus')}/password")
    assert requests.put(other, json={"new_password": STRONG}, auth=as_("dev")).status_code == 403
    changed = requests.put(
        url, json={"old_password": PASSWORD, "new_password": STRONG}, auth=as_("dev")
    )
    assert changed.status_code == 200
    assert requests.get(api(registry, "users/current"), auth=as_("dev")).status_code == 401
    assert requests.get(api(registry, "users/current"), auth=("dev", STRONG)).status_code == 200
    reset = requests.put(url, json={"new_password": STRONG + "x"}, auth=ADMIN)
    assert reset.status_code == 200
    assert requests.get(api(registry, "users/current"), auth=("dev", STRONG)).status_code == 401
    assert audit_changes("user", "user:dev") == [
        ("dev", "password changed"),
        ("admin", "password changed"),
    ]


@pytest.mark.usefixtures("team")
def test_users_are_deleted_but_not_oneself_and_searched_by_anyone(registry) -> None:
    one = api(registry, f"users/{user_id('out')}")
    assert requests.delete(one, auth=ADMIN).status_code == 200
    assert requests.get(one, auth=ADMIN).status_code == 404
    assert requests.delete(one, auth=ADMIN).status_code == 404
    own = requests.delete(api(registry, f"users/{user_id('admin')}"), auth=ADMIN)
    assert own.status_code == 403
    assert audit_changes("user", "user:out") == [("admin", "deleted")]

    search = requests.get(api(registry, "users/search"), params={"username": "u"}, auth=as_("lim"))
    assert search.status_code == 200
    assert search.json() == [{"user_id": user_id("gus"), "username": "gus"}]
    empty = requests.get(api(registry, "users/search"), auth=as_("lim"))
    assert empty.status_code == 400


# --- groups ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("team")
def test_user_groups_are_managed_by_the_admin_and_searched_by_anyone(registry) -> None:
    url = api(registry, "usergroups")
    created = requests.post(url, json={"group_name": "ops", "group_type": 2}, auth=ADMIN)
    assert created.status_code == 201
    group_id = Group.objects.get(name="ops").pk
    assert created.headers["Location"] == f"/api/v2.0/usergroups/{group_id}"
    assert requests.post(url, json={"group_name": "ops"}, auth=ADMIN).status_code == 409
    bad_type = requests.post(url, json={"group_name": "x", "group_type": 7}, auth=ADMIN)
    assert bad_type.status_code == 400
    requests.post(url, json={"group_name": "ldap-devs", "group_type": 1}, auth=ADMIN)
    Group.objects.create(name="from-sso")  # made by a login: no stored type

    listed = requests.get(url, auth=ADMIN)
    assert listed.headers["X-Total-Count"] == "3"
    assert [(g["group_name"], g["group_type"]) for g in listed.json()] == [
        ("from-sso", 2),
        ("ldap-devs", 1),
        ("ops", 2),
    ]
    assert [
        g["group_name"]
        for g in requests.get(url, params={"q": "group_name=~dev"}, auth=ADMIN).json()
    ] == ["ldap-devs"]
    one = api(registry, f"usergroups/{group_id}")
    assert requests.put(one, json={"group_name": "ldap-devs"}, auth=ADMIN).status_code == 409
    assert requests.put(one, json={"group_name": "operators"}, auth=ADMIN).status_code == 200
    assert requests.get(one, auth=ADMIN).json() == {
        "id": group_id,
        "group_name": "operators",
        "group_type": 2,
        "ldap_group_dn": "",
    }
    search = requests.get(
        api(registry, "usergroups/search"), params={"groupname": "oper"}, auth=as_("dev")
    )
    assert search.json() == [{"id": group_id, "group_name": "operators", "group_type": 2}]
    assert requests.delete(one, auth=ADMIN).status_code == 200
    assert requests.get(one, auth=ADMIN).status_code == 404
    assert audit_changes("group", "group:ops") == [("admin", "created")]
    assert audit_changes("group", "group:operators") == [("admin", "renamed"), ("admin", "deleted")]


# --- audit logs -----------------------------------------------------------------------------


@pytest.mark.usefixtures("team")
def test_audit_logs_newest_first_filtered_and_paged(registry) -> None:
    push_image(registry, "team/app", "v1")
    requests.put(api(registry, "projects/team"), json={"storage_limit": 1 << 30}, auth=ADMIN)
    url = api(registry, "audit-logs")
    newest = requests.get(url, params={"page_size": 100}, auth=ADMIN)
    rows = newest.json()
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert rows[0]["operation"] == "project" and rows[0]["resource"] == "project:team"
    assert rows[0]["resource_type"] == "project" and rows[0]["username"] == "admin"
    assert set(rows[0]) == {
        "id",
        "username",
        "resource",
        "resource_type",
        "operation",
        "op_time",
        "source",
    }
    assert int(newest.headers["X-Total-Count"]) == AuditEntry.objects.count()

    def ops(**params):
        response = requests.get(url, params={"page_size": 100, **params}, auth=ADMIN)
        assert response.status_code == 200, response.text
        return [(r["operation"], r["resource"], r["resource_type"]) for r in response.json()]

    pushes = ops(q="operation=push")
    assert pushes and all(op == "push" and res.startswith("team/app") for op, res, _ in pushes)
    assert ("push", "team/app:v1", "artifact") in pushes
    assert {t for _, _, t in ops(q="resource=~team/app")} <= {"artifact", "repository"}
    assert all(t == "artifact" for _, _, t in ops(q="resource_type=artifact"))
    assert ops(q="username=pat") == []
    assert ops(q="op_time=[2001-01-01 00:00:00~2001-12-31 23:59:59]") == []
    now = datetime.now(UTC)
    window = f"[{(now - timedelta(hours=1)):%Y-%m-%d %H:%M:%S}~]"
    assert len(ops(q=f"op_time={window}")) == AuditEntry.objects.count()
    for bad in ("op_time=[yesterday~]", "op_time=2026-01-01", "colour=red", "resource_type=x"):
        assert requests.get(url, params={"q": bad}, auth=ADMIN).status_code == 400, bad

    second = requests.get(url, params={"page": 2, "page_size": 2}, auth=ADMIN)
    assert [r["id"] for r in second.json()] == [r["id"] for r in rows[2:4]]
    assert 'rel="prev"' in second.headers["Link"]


@pytest.mark.usefixtures("team")
def test_a_projects_logs_are_its_own_and_for_its_admins(registry) -> None:
    Project.objects.create(name="teamwork", public=True)
    audit_record(actor=Actor("x"), action="push", resource="teamwork/app:1")
    audit_record(actor=Actor("x"), action="permission", resource="robot$team+ci")
    audit_record(actor=Actor("x"), action="push", resource="team/app:1")
    url = api(registry, "projects/team/logs")
    rows = requests.get(url, params={"page_size": 100}, auth=as_("pat")).json()
    resources = {r["resource"] for r in rows}
    assert resources == {"project:team", "robot$team+ci", "team/app:1"}
    assert requests.get(url, auth=as_("dev")).status_code == 403
    assert requests.get(url, auth=as_("out")).status_code == 404
    pushes = requests.get(url, params={"q": "operation=push"}, auth=as_("pat")).json()
    assert [r["resource"] for r in pushes] == ["team/app:1"]


@pytest.mark.usefixtures("team")
def test_the_hash_chain_is_verified(registry) -> None:
    url = api(registry, "audit-logs/verify")
    intact = requests.get(url, auth=ADMIN).json()
    assert intact == {
        "intact": True,
        "entries": AuditEntry.objects.count(),
        "broken_at": None,
        "reason": "",
    }
    entry = AuditEntry.objects.order_by("id")[1]
    AuditEntry.objects.filter(pk=entry.pk).update(actor="mallory")
    broken = requests.get(url, auth=ADMIN).json()
    assert broken["intact"] is False and broken["broken_at"] == entry.pk
    assert broken["reason"] == "its recorded fields were changed"


@pytest.mark.django_db
def test_the_audit_log_costs_a_fixed_number_of_queries(
    admin_client, django_assert_max_num_queries
) -> None:
    for n in range(60):
        audit_record(actor=SYSTEM, action="push", resource=f"library/app:{n}")
    admin_client.get("/api/v2.0/audit-logs")  # the first call verifies the password
    with django_assert_max_num_queries(3):
        response = admin_client.get("/api/v2.0/audit-logs?page_size=50&q=operation=push")
    assert response.status_code == 200 and len(response.json()) == 50
    with django_assert_max_num_queries(4):
        response = admin_client.get("/api/v2.0/projects/library/logs?page_size=50")
    assert response.status_code == 200 and len(response.json()) == 50


# --- quotas, statistics, settings -----------------------------------------------------------


@pytest.mark.usefixtures("team")
def test_quotas_show_limits_and_usage_and_the_admin_sets_them(registry) -> None:
    push_image(registry, "team/app", "v1")
    project = Project.objects.get(name="team")
    url = api(registry, f"quotas/{project.pk}")
    quota = requests.get(url, auth=ADMIN).json()
    assert quota["ref"] == {"id": project.pk, "name": "team", "owner_name": ""}
    assert quota["hard"] == {"storage": -1} and quota["used"]["storage"] > 0
    listed = requests.get(api(registry, "quotas"), params={"page_size": 100}, auth=ADMIN)
    assert listed.headers["X-Total-Count"] == str(Project.objects.count())
    assert quota in listed.json()

    assert requests.put(url, json={"hard": {"storage": 5000}}, auth=ADMIN).status_code == 200
    project.refresh_from_db()
    assert project.quota_bytes == 5000
    assert requests.get(url, auth=ADMIN).json()["hard"] == {"storage": 5000}
    assert requests.put(url, json={"hard": {"storage": -1}}, auth=ADMIN).status_code == 200
    project.refresh_from_db()
    assert project.quota_bytes is None
    for bad in ({"hard": {"storage": -5}}, {"hard": {}}, {}):
        assert requests.put(url, json=bad, auth=ADMIN).status_code == 400, bad
    assert requests.get(api(registry, "quotas/999999"), auth=ADMIN).status_code == 404
    assert audit_changes("project", "project:team") == [("admin", "updated")] * 2


@pytest.mark.usefixtures("team")
def test_statistics_count_what_the_caller_may_see(registry) -> None:
    push_image(registry, "team/app", "v1")
    push_image(registry, "library/app", "v1")
    public = Project.objects.filter(public=True).count()

    def stats(who):
        response = requests.get(api(registry, "statistics"), auth=as_(who))
        assert response.status_code == 200
        return response.json()

    outsider = stats("out")
    assert outsider["private_project_count"] == 0 and outsider["public_project_count"] == public
    assert (outsider["public_repo_count"], outsider["private_repo_count"]) == (1, 0)
    assert "total_storage_consumption" not in outsider
    member = stats("lim")
    assert (member["private_project_count"], member["private_repo_count"]) == (1, 1)
    assert member["total_project_count"] == public + 1 and member["total_repo_count"] == 2
    admin = stats("admin")
    assert admin["total_project_count"] == Project.objects.count()
    assert admin["total_storage_consumption"] > 0


@pytest.mark.usefixtures("team")
def test_settings_are_read_and_changed_by_the_admin(registry) -> None:
    url = api(registry, "configurations")
    shown = requests.get(url, auth=ADMIN).json()
    assert shown["project_creation_restriction"] == {"value": "everyone", "editable": True}
    assert shown["auth_mode"] == {"value": "db_auth", "editable": False}
    change = {"project_creation_restriction": "adminonly"}
    assert requests.put(url, json=change, auth=ADMIN).status_code == 200
    refused = requests.post(api(registry, "projects"), json={"project_name": "x"}, auth=as_("pat"))
    assert refused.status_code == 403
    for bad in ({"project_creation_restriction": "nobody"}, {"auth_mode": "ldap_auth"}, []):
        response = requests.put(url, json=bad, auth=ADMIN)
        assert response.status_code == 400 and errors(response)[0] == "BAD_REQUEST", bad
    assert (
        requests.get(url, auth=ADMIN).json()["project_creation_restriction"]["value"] == "adminonly"
    )
    [entry] = AuditEntry.objects.filter(action="setting")
    assert (entry.actor, entry.resource, entry.detail) == (
        "admin",
        "setting:project_creation_restriction",
        {"value": "adminonly"},
    )
