"""Declarative projects and role bindings: the service, ``harborpy apply``, ``harborpy config``
and ``POST /api/v2.0/apply``."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import requests
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from audit.models import AuditEntry
from audit.services import Actor
from projects.models import Project
from projects.services import project_create
from rbac.apply import documents_apply, documents_parse, system_principal
from rbac.bindings import Subject, binding_set, bindings_of
from rbac.credentials import principal_for_user
from rbac.exceptions import ApplyDenied, ApplyInvalid
from rbac.models import SystemSetting
from rbac.policy import ADMIN_ONLY, EVERYONE, PROJECT_CREATION, Kind, Principal
from rbac.robots import robot_create
from rbac.roles import Role
from tests.fixtures.server import ADMIN

SYSTEM = system_principal()

PRODUCTION = """
project:
  name: production
  quota_bytes: 10737418240
  role_bindings:
    - subject: dev-team
      role: developer
    - subject: ops-team
      role: projectAdmin
    - subject: user:alice
      role: guest
"""


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def apply(text: str, principal: Principal = SYSTEM, *, dry_run: bool = False) -> list[str]:
    changes = documents_apply(
        documents=documents_parse(dedent(text)),
        principal=principal,
        actor=Actor(principal.subject),
        dry_run=dry_run,
    )
    return [change.text for change in changes]


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, to show that something wrote nothing at all."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
    }


def make_user(name: str, *, admin: bool = False) -> Principal:
    User = get_user_model()
    user = User(username=name, is_superuser=admin)
    user.set_unusable_password()
    user.save()
    return principal_for_user(user)


def bind(project: Project, subject: str, role: Role) -> None:
    kind, _, name = subject.partition(":")
    binding_set(project=project, subject=Subject(kind, name), role=role, actor=Actor("test"))


@pytest.fixture
def alice(db) -> Principal:
    return make_user("alice")


@pytest.fixture
def production(db) -> Project:
    """An existing private project with a user, a robot and a group bound."""
    project = project_create(name="production")
    make_user("alice")
    robot_create(
        name="ci",
        project=project,
        permissions=[{"project": "production", "actions": ["pull"]}],
        actor=Actor("test"),
    )
    bind(project, "user:alice", Role.GUEST)
    bind(project, "robot:robot$production+ci", Role.GUEST)
    bind(project, "group:ops-team", Role.PROJECT_ADMIN)
    return project


# --- the service --------------------------------------------------------------------------


def test_a_file_creates_the_project_with_its_bindings(alice):
    assert apply(PRODUCTION) == [
        "+ project production (private, quota 10737418240 bytes)",
        "+ group:dev-team developer in production",
        "+ group:ops-team projectAdmin in production",
        "+ user:alice guest in production",
    ]
    project = Project.objects.get(name="production")
    assert not project.public and project.quota_bytes == 10737418240
    assert bindings_of(project) == {
        "group:dev-team": "developer",
        "group:ops-team": "projectAdmin",
        "user:alice": "guest",
    }
    # LDAP and SSO groups hold roles before anyone logs in: created on demand.
    assert set(Group.objects.values_list("name", flat=True)) >= {"dev-team", "ops-team"}
    created = AuditEntry.objects.filter(action="project", resource="project:production")
    assert created.get().actor == "system"
    assert AuditEntry.objects.filter(action="permission").count() == 3


def test_applying_the_same_file_again_reports_and_writes_nothing(alice):
    assert apply(PRODUCTION)
    audited = AuditEntry.objects.count()
    before = snapshot()
    assert apply(PRODUCTION) == []
    assert AuditEntry.objects.count() == audited
    assert snapshot() == before


def test_a_dry_run_writes_nothing_at_all(alice):
    before = snapshot()
    planned = apply(PRODUCTION, dry_run=True)
    assert snapshot() == before
    assert not Group.objects.filter(name="dev-team").exists()
    assert apply(PRODUCTION) == planned


def test_the_diff_shows_additions_changes_and_removals(production):
    changes = apply(
        """
        project:
          name: production
          public: true
          quota_bytes: 1024
          role_bindings:
            - {subject: "user:alice", role: developer}
            - {subject: ops-team, role: projectAdmin}
            - {subject: "group:dev-team", role: developer}
        """
    )
    assert changes == [
        "~ project production public: false → true",
        "~ project production quota_bytes: null → 1024",
        "~ user:alice guest → developer in production",
        "+ group:dev-team developer in production",
        "- robot:robot$production+ci guest in production",
    ]
    production.refresh_from_db()
    assert production.public and production.quota_bytes == 1024
    assert bindings_of(production) == {
        "user:alice": "developer",
        "group:ops-team": "projectAdmin",
        "group:dev-team": "developer",
    }


def test_a_robot_is_named_as_the_projects_robot(production):
    changes = apply(
        """
        project:
          name: production
          role_bindings:
            - {subject: "robot:ci", role: developer}
            - {subject: "user:alice", role: guest}
            - {subject: ops-team, role: projectAdmin}
        """
    )
    assert changes == ["~ robot:robot$production+ci guest → developer in production"]


def test_omitted_settings_and_bindings_are_left_alone_and_an_empty_list_removes_all(production):
    production.quota_bytes = 5
    production.save()
    before = bindings_of(production)
    assert apply("project: {name: production}") == []
    production.refresh_from_db()
    assert production.quota_bytes == 5 and bindings_of(production) == before
    assert apply("project: {name: production, quota_bytes: null, role_bindings: []}") == [
        "~ project production quota_bytes: 5 → null",
        "- group:ops-team projectAdmin in production",
        "- robot:robot$production+ci guest in production",
        "- user:alice guest in production",
    ]
    assert bindings_of(production) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "project: {name: production, owner: bob}",
            "document 1 (project 'production'): unknown key 'owner'",
        ),
        ("projects: {name: production}", "document 1: expected a mapping with the key 'project'"),
        ("project: {name: Production}", "document 1: invalid project name 'Production'"),
        ("project: {public: true}", "document 1: 'name' is required"),
        ("project: {name: production, public: maybe}", "'public' must be true or false"),
        ("project: {name: production, quota_bytes: -1}", "'quota_bytes' must be a non-negative"),
        ("project: {name: production, quota_bytes: 10G}", "'quota_bytes' must be a non-negative"),
        ("project: {name: production, role_bindings: }", "'role_bindings' must be a list"),
        (
            "project: {name: production, role_bindings: [{subject: dev, role: developr}]}",
            "document 1 (project 'production'), role_bindings entry 1 (dev): "
            "unknown role 'developr'",
        ),
        (
            "project: {name: production, role_bindings: [{subject: dev, roles: guest}]}",
            "role_bindings entry 1: unknown key 'roles'",
        ),
        (
            "project: {name: production, role_bindings: [{subject: 'user:nobody', role: guest}]}",
            "role_bindings entry 1 (user:nobody): user 'nobody' does not exist",
        ),
        (
            "project: {name: production, role_bindings: [{subject: 'robot:ci', role: guest}]}",
            "robot 'robot$production+ci' does not exist",
        ),
        (
            "project: {name: production, role_bindings: [{subject: 'team:x', role: guest}]}",
            "invalid subject 'team:x'",
        ),
        (
            "project: {name: production, role_bindings: "
            "[{subject: dev, role: guest}, {subject: 'group:dev', role: developer}]}",
            "role_bindings entry 2 (group:dev): group:dev is listed twice",
        ),
        (
            "project: {name: production}\n---\nproject: {name: production}",
            "document 2 (project 'production'): the project is also in document 1",
        ),
        ("project: {name: production, name: staging}", "duplicate key 'name'"),
        ("project: [name: production", "not valid YAML"),
        ("", "no documents"),
    ],
)
def test_invalid_files_are_refused_naming_the_document_and_entry(db, text, message):
    before = snapshot()
    with pytest.raises(ApplyInvalid) as refused:
        apply(text)
    assert message in str(refused.value)
    assert snapshot() == before


def test_every_problem_is_reported_at_once(db):
    with pytest.raises(ApplyInvalid) as refused:
        apply(
            """
            project:
              name: production
              public: "no"
              role_bindings:
                - {subject: "user:ghost", role: guest}
                - {subject: dev-team, role: boss}
            """
        )
    assert len(refused.value.problems) == 3


def test_a_bad_second_document_leaves_the_first_unwritten(alice):
    first = PRODUCTION.strip()
    before = snapshot()
    bad = "project:\n  name: staging\n  role_bindings:\n    - {subject: 'user:ghost', role: guest}"
    with pytest.raises(ApplyInvalid, match=r"document 2 \(project 'staging'\)"):
        apply(f"{first}\n---\n{bad}")
    assert snapshot() == before
    # A refused second document stops the first one too.
    bind(project_create(name="staging"), "user:alice", Role.PROJECT_ADMIN)
    project_create(name="production")
    before = snapshot()
    allowed = "project: {name: staging, public: true}"
    assert apply(allowed, alice, dry_run=True) == ["~ project staging public: false → true"]
    with pytest.raises(ApplyDenied, match=r"document 2 \(project 'production'\)"):
        apply(f"{allowed}\n---\nproject: {{name: production, public: true}}", alice)
    assert snapshot() == before


def test_a_developer_may_not_change_bindings(production):
    bind(production, "user:alice", Role.DEVELOPER)
    alice = principal_for_user(get_user_model().objects.get(username="alice"))
    before = snapshot()
    with pytest.raises(ApplyDenied) as denied:
        apply(
            """
            project:
              name: production
              role_bindings:
                - {subject: "user:alice", role: projectAdmin}
            """,
            alice,
        )
    assert "~ user:alice developer → projectAdmin in production" in str(denied.value)
    assert "- group:ops-team projectAdmin in production" in str(denied.value)
    assert snapshot() == before


@pytest.mark.parametrize("role", list(Role))
def test_only_a_project_admin_may_change_bindings_and_settings(production, role):
    bob = make_user("bob")
    bind(production, "user:bob", role)
    members = "\n".join(
        f"    - {{subject: '{s}', role: {r}}}" for s, r in bindings_of(production).items()
    )
    head = "project:\n  name: production\n  role_bindings:\n"
    grow = f"{head}{members}\n    - {{subject: x, role: guest}}"
    publish = "project: {name: production, public: true}"
    if role is Role.PROJECT_ADMIN:
        assert apply(grow, bob) == ["+ group:x guest in production"]
        assert apply(publish, bob) == ["~ project production public: false → true"]
    else:
        with pytest.raises(ApplyDenied):
            apply(grow, bob)
        with pytest.raises(ApplyDenied, match="public: false → true"):
            apply(publish, bob)
        assert "group:x" not in bindings_of(production)


def test_a_project_the_principal_cannot_see_is_denied_without_showing_its_bindings(production):
    bob = make_user("bob")
    text = "project: {name: production, role_bindings: []}"
    with pytest.raises(ApplyDenied) as denied:
        apply(text, bob)
    assert "alice" not in str(denied.value)
    bind(production, "user:bob", Role.LIMITED_GUEST)  # sees the project, not its members
    with pytest.raises(ApplyDenied) as denied:
        apply(text, bob)
    assert "alice" not in str(denied.value)


def test_project_creation_follows_the_restriction(db):
    bob = make_user("bob")
    root = make_user("root", admin=True)
    SystemSetting.objects.create(key=PROJECT_CREATION, value=ADMIN_ONLY)
    with pytest.raises(ApplyDenied, match="only system administrators may create projects"):
        apply("project: {name: team}", bob)
    assert not Project.objects.filter(name="team").exists()
    assert apply("project: {name: team}", root) == [
        "+ project team (private)",
        "+ user:root projectAdmin in team",
    ]
    SystemSetting.objects.filter(key=PROJECT_CREATION).update(value=EVERYONE)
    assert apply("project: {name: bobs, public: true}", bob) == [
        "+ project bobs (public)",
        "+ user:bob projectAdmin in bobs",
    ]
    project = Project.objects.get(name="bobs")
    assert project.owner.username == "bob" and project.public
    assert bindings_of(project) == {"user:bob": "projectAdmin"}
    # ...and, as its projectAdmin, may go on managing it.
    assert apply("project: {name: bobs, role_bindings: [{subject: dev, role: guest}]}", bob) == [
        "+ group:dev guest in bobs",
        "- user:bob projectAdmin in bobs",
    ]


def test_listed_bindings_of_a_new_project_are_its_complete_set(db):
    bob = make_user("bob")
    assert apply(
        "project: {name: team, role_bindings: [{subject: dev, role: maintainer}]}", bob
    ) == [
        "+ project team (private)",
        "+ group:dev maintainer in team",
    ]
    assert bindings_of(Project.objects.get(name="team")) == {"group:dev": "maintainer"}


def test_the_system_owns_no_project_it_creates(db):
    assert apply("project: {name: team}") == ["+ project team (private)"]
    assert bindings_of(Project.objects.get(name="team")) == {}


def test_a_registry_token_grants_no_project_changes(db):
    make_user("bob")
    token = Principal(kind=Kind.USER, name="bob", token_access=frozenset())
    with pytest.raises(ApplyDenied, match="registry token"):
        apply("project: {name: team}", token)


# --- harborpy apply and harborpy config -----------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_the_apply_command_dry_run_then_apply(alice, tmp_path):
    path = tmp_path / "production.yaml"
    path.write_text(PRODUCTION)
    before = snapshot()
    lines = run("apply", "-f", str(path), "--dry-run").splitlines()
    assert snapshot() == before
    assert lines[0] == "+ project production (private, quota 10737418240 bytes)"
    assert lines[-1] == "4 changes (dry run, nothing written)"
    assert run("apply", "-f", str(path)).splitlines() == [*lines[:-1], "4 changes applied"]
    assert run("apply", "-f", str(path)) == "no changes\n"


def test_the_apply_command_names_the_file_in_its_errors(db, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("project: {name: x, role_bindings: [{subject: a, role: boss}]}\n")
    with pytest.raises(CommandError, match=r"bad.yaml: document 1 \(project 'x'\)"):
        run("apply", "-f", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        run("apply", "-f", str(tmp_path / "missing.yaml"))


def harborpy(server, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harborpy.cli", *args],
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_apply_command_reads_standard_input(registry):
    make_user("alice")
    result = harborpy(registry, "apply", "-f", "-", stdin=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "4 changes applied"
    assert bindings_of(Project.objects.get(name="production"))["user:alice"] == "guest"
    bad = harborpy(registry, "apply", "-f", "-", stdin="project: {name: Bad}\n")
    assert bad.returncode != 0
    assert "<stdin>: document 1: invalid project name 'Bad'" in bad.stderr


def test_the_config_command_sets_the_project_creation_restriction(db):
    assert run("config", "get", PROJECT_CREATION) == "everyone\n"
    assert run("config", "set", PROJECT_CREATION, "adminonly") == f"{PROJECT_CREATION} adminonly\n"
    assert run("config", "get") == f"{PROJECT_CREATION} adminonly\n"
    entries = AuditEntry.objects.filter(action="setting")
    assert [e.detail for e in entries] == [{"value": "adminonly"}]
    run("config", "set", PROJECT_CREATION, "adminonly")
    assert entries.count() == 1, "setting the same value again writes nothing"
    with pytest.raises(CommandError, match=r"invalid value 'nobody'.*adminonly or everyone"):
        run("config", "set", PROJECT_CREATION, "nobody")
    with pytest.raises(CommandError, match="unknown setting 'colour'"):
        run("config", "set", "colour", "blue")
    with pytest.raises(CommandError, match="unknown setting"):
        run("config", "get", "colour")


# --- POST /api/v2.0/apply -------------------------------------------------------------------

YAML = {"Content-Type": "application/yaml"}


def post(registry, body: str | bytes, *, auth: Any = ADMIN, query: str = "", **headers: str):
    return requests.post(
        f"{registry.url}/api/v2.0/apply{query}",
        data=body,
        auth=auth,
        headers={**YAML, **headers},
        timeout=30,
    )


def errors(response: requests.Response, status: int, code: str) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    found = response.json()["errors"]
    assert found and all(error["code"] == code for error in found)
    return [error["message"] for error in found]


def without_logins() -> dict[str, list[dict[str, Any]]]:
    tables = snapshot()
    tables.pop("audit.AuditHead")
    tables["audit.AuditEntry"] = [e for e in tables["audit.AuditEntry"] if e["action"] != "login"]
    return tables


def test_the_admin_applies_a_file_over_the_api(registry):
    make_user("alice")
    response = post(registry, PRODUCTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is False
    assert [c["text"] for c in body["changes"]] == [
        "+ project production (private, quota 10737418240 bytes)",
        "+ group:dev-team developer in production",
        "+ group:ops-team projectAdmin in production",
        "+ user:alice guest in production",
    ]
    assert body["changes"][:2] == [
        {
            "kind": "project.create",
            "text": "+ project production (private, quota 10737418240 bytes)",
            "project": "production",
            "public": False,
            "quota_bytes": 10737418240,
            "owner": None,
        },
        {
            "kind": "binding.create",
            "text": "+ group:dev-team developer in production",
            "project": "production",
            "subject": "group:dev-team",
            "role": "developer",
        },
    ]
    assert Project.objects.filter(name="production").exists()
    again = post(registry, PRODUCTION)
    assert again.json() == {"dry_run": False, "changes": []}


def test_json_bodies_and_a_dry_run(registry):
    body = '[{"project": {"name": "team", "public": true}}, {"project": {"name": "other"}}]'
    post(registry, "project: {name: warm-up}", query="?dry_run=1")  # the login is audited
    before = without_logins()
    response = post(registry, body, query="?dry_run=true", **{"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is True
    assert [c["text"] for c in response.json()["changes"]] == [
        "+ project team (public)",
        "+ user:admin projectAdmin in team",
        "+ project other (private)",
        "+ user:admin projectAdmin in other",
    ]
    assert without_logins() == before
    errors(post(registry, body, query="?dry_run=maybe"), 400, "BAD_REQUEST")


def test_anonymous_and_bad_credentials_get_401(registry):
    response = post(registry, "project: {name: team}", auth=None)
    assert errors(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    errors(post(registry, "project: {name: team}", auth=("admin", "wrong")), 401, "UNAUTHORIZED")
    errors(
        post(registry, "project: {name: team}", auth=None, Authorization="Bearer not-a-token"),
        401,
        "UNAUTHORIZED",
    )
    assert not Project.objects.filter(name="team").exists()


def test_repeated_bad_passwords_are_throttled(registry):
    for _ in range(5):
        errors(post(registry, "", auth=("throttle-me", "wrong")), 401, "UNAUTHORIZED")
    response = post(registry, "", auth=("throttle-me", "wrong"))
    errors(response, 429, "TOO_MANY_REQUESTS")
    assert int(response.headers["Retry-After"]) > 0


def test_a_user_without_rights_gets_403(registry):
    User = get_user_model()
    User.objects.create_user("bob", password="Bob-Secret-42")
    SystemSetting.objects.create(key=PROJECT_CREATION, value=ADMIN_ONLY)
    response = post(registry, "project: {name: bobs}", auth=("bob", "Bob-Secret-42"))
    assert "only system administrators may create projects" in errors(response, 403, "FORBIDDEN")[0]
    response = post(registry, "project: {name: test, public: false}", auth=("bob", "Bob-Secret-42"))
    errors(response, 403, "FORBIDDEN")
    assert Project.objects.get(name="test").public
    # A token from the token service grants repository access only.
    token = requests.get(
        f"{registry.url}/service/token",
        params={"service": "harborpy", "scope": "repository:test/app:pull"},
        auth=("bob", "Bob-Secret-42"),
        timeout=30,
    ).json()["token"]
    SystemSetting.objects.filter(key=PROJECT_CREATION).update(value=EVERYONE)
    response = post(registry, "project: {name: bobs}", auth=None, Authorization=f"Bearer {token}")
    errors(response, 403, "FORBIDDEN")
    assert not Project.objects.filter(name="bobs").exists()


def test_invalid_bodies_get_400_with_every_problem(registry):
    assert "not valid YAML" in errors(post(registry, "project: [oops"), 400, "BAD_REQUEST")[0]
    messages = errors(
        post(registry, "project: {name: x, role_bindings: [{subject: a, role: b}, 3]}"),
        400,
        "BAD_REQUEST",
    )
    assert len(messages) == 2 and messages[0].startswith("document 1 (project 'x')")
    bad_json = post(registry, "{", **{"Content-Type": "application/json"})
    assert "not valid JSON" in errors(bad_json, 400, "BAD_REQUEST")[0]
    errors(
        post(registry, "a=b", **{"Content-Type": "multipart/form-data"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    big = post(registry, "# " + "x" * (5 << 20))
    errors(big, 413, "REQUEST_ENTITY_TOO_LARGE")
    assert not Project.objects.filter(name="x").exists()


def test_a_console_session_must_carry_the_csrf_token(db):
    user = get_user_model().objects.create_user("carol", is_superuser=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    body, kind = "project: {name: team}", "application/yaml"
    refused = browser.post("/api/v2.0/apply", body, content_type=kind)
    assert refused.status_code == 403 and "CSRF" in refused.json()["errors"][0]["message"]
    token = "k" * 32
    browser.cookies["csrftoken"] = token
    response = browser.post("/api/v2.0/apply", body, content_type=kind, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert response.json()["changes"][0]["text"] == "+ project team (private)"
    assert Project.objects.get(name="team").owner == user
