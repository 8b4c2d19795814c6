"""The access matrix, walked cell by cell against Harbor's published role table.

The expected answers are written out below by hand, transcribed from Harbor
(``rolePoliciesMap`` in ``src/common/rbac/project/rbac_role.go`` and
``publicProjectPolicies`` in ``src/common/rbac/project/rbac_util.go``), as of
Harbor 2.13.  They are deliberately NOT derived from ``rbac.roles``: a test
that reads its expectations from the code under test cannot fail.  Rows for
features harborpy does not have (helm charts, preheat policies, SBOM
generation, CVE export) are left out; ``test_the_table_has_a_row_for_every_
permission_in_the_code`` keeps the rows and the code's permissions in step.

Columns: a member holding the role in a private project (pA = projectAdmin,
mt = maintainer, dev = developer, gst = guest, lg = limitedGuest), then a
public project seen by an anonymous visitor (anon) and by a logged-in user
who is not a member (user).  ``x`` allowed, ``.`` denied.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from audit.services import SYSTEM
from projects.models import Project
from projects.services import project_create
from rbac.bindings import Subject, binding_set, setting_set
from rbac.credentials import principal_for_robot, principal_for_user
from rbac.exceptions import CredentialsInvalid
from rbac.policy import (
    ANONYMOUS,
    PROJECT_CREATION,
    Principal,
    Resource,
    System,
    authorize,
    authorize_scope,
)
from rbac.robots import robot_create
from rbac.roles import ALL_PERMISSIONS, Role
from rbac.tokens import scope_parse, signing_key, token_issue, token_verify

HARBOR_TABLE = """
resource             action    pA  mt  dev  gst  lg    anon  user
project              read      x   x   x    x    x     x     x
project              update    x   .   .    .    .     .     .
project              delete    x   .   .    .    .     .     .

member               create    x   .   .    .    .     .     .
member               read      x   x   x    x    .     .     .
member               update    x   .   .    .    .     .     .
member               delete    x   .   .    .    .     .     .
member               list      x   x   x    x    .     .     .

# Maintainers lost create/update/delete in 2.9.5/2.10.3/2.11 (CVE-2024-22278).
metadata             create    x   .   .    .    .     .     .
metadata             read      x   x   .    .    .     .     .
metadata             update    x   .   .    .    .     .     .
metadata             delete    x   .   .    .    .     .     .
metadata             list      x   .   .    .    .     .     .

# Only the project admin lists the project's logs since Harbor 2.13.
log                  list      x   .   .    .    .     .     .

label                create    x   x   .    .    .     .     .
label                read      x   x   x    x    .     x     x
label                update    x   x   .    .    .     .     .
label                delete    x   x   .    .    .     .     .
label                list      x   x   x    x    .     x     x

quota                read      x   x   x    x    x     .     .

# Limited guests read repositories since 2.9.2/2.10.1 (goharbor/harbor#19709).
repository           create    x   x   x    .    .     .     .
repository           read      x   x   x    x    x     .     .
repository           update    x   x   x    .    .     .     .
repository           delete    x   x   .    .    .     .     .
repository           list      x   x   x    x    x     x     x
repository           pull      x   x   x    x    x     x     x
repository           push      x   x   x    .    .     .     .

artifact             create    x   x   x    .    .     .     .
artifact             read      x   x   x    x    x     x     x
artifact             delete    x   x   .    .    .     .     .
artifact             list      x   x   x    x    x     x     x
artifact-addition    read      x   x   x    x    x     x     x
artifact-label       create    x   x   x    .    .     .     .
artifact-label       delete    x   x   x    .    .     .     .
tag                  create    x   x   x    .    .     .     .
tag                  delete    x   x   .    .    .     .     .
tag                  list      x   x   x    x    x     x     x
accessory            list      x   x   x    x    x     x     x

tag-retention        create    x   x   x    .    .     .     .
tag-retention        read      x   x   x    .    .     .     .
tag-retention        update    x   x   x    .    .     .     .
tag-retention        delete    x   x   x    .    .     .     .
tag-retention        list      x   x   x    .    .     .     .
tag-retention        operate   x   x   x    .    .     .     .

immutable-tag        create    x   x   .    .    .     .     .
immutable-tag        update    x   x   .    .    .     .     .
immutable-tag        delete    x   x   .    .    .     .     .
immutable-tag        list      x   x   .    .    .     .     .

configuration        read      x   x   x    x    x     .     .
configuration        update    x   .   .    .    .     .     .

robot                create    x   .   .    .    .     .     .
robot                read      x   x   x    x    .     .     .
robot                update    x   .   .    .    .     .     .
robot                delete    x   .   .    .    .     .     .
robot                list      x   x   x    x    .     .     .

notification-policy  create    x   .   .    .    .     .     .
notification-policy  read      x   x   .    .    .     .     .
notification-policy  update    x   .   .    .    .     .     .
notification-policy  delete    x   .   .    .    .     .     .
notification-policy  list      x   x   .    .    .     .     .

scan                 create    x   x   .    .    .     .     .
scan                 read      x   x   x    x    x     x     x
scan                 stop      x   x   .    .    .     .     .
scanner              create    x   .   .    .    .     .     .
scanner              read      x   x   x    x    x     x     x
"""

COLUMNS = {
    "pA": "projectAdmin",
    "mt": "maintainer",
    "dev": "developer",
    "gst": "guest",
    "lg": "limitedGuest",
    "anon": "anonymous",
    "user": "non-member",
}
ROLES = ("projectAdmin", "maintainer", "developer", "guest", "limitedGuest")
PUBLIC_VISITORS = ("anonymous", "non-member")

Permission = tuple[str, str]


def table_parse(text: str) -> dict[Permission, dict[str, bool]]:
    """``{(resource, action): {column name: allowed}}`` from the text table."""
    lines = [line.split("#", 1)[0].split() for line in text.splitlines()]
    header, *body = [fields for fields in lines if fields]
    assert header == ["resource", "action", *COLUMNS], header
    table: dict[Permission, dict[str, bool]] = {}
    for fields in body:
        resource, action, *marks = fields
        assert len(marks) == len(COLUMNS) and set(marks) <= {"x", "."}, fields
        assert (resource, action) not in table, f"row {resource} {action} twice"
        names = COLUMNS.values()
        table[(resource, action)] = {n: m == "x" for n, m in zip(names, marks, strict=True)}
    return table


HARBOR = table_parse(HARBOR_TABLE)

# What the read-only switch must refuse even to the system admin.
READ_ONLY_WRITES = [
    ("repository", "push"),
    ("repository", "delete"),
    ("artifact", "create"),
    ("artifact", "delete"),
    ("tag", "create"),
    ("tag", "delete"),
]
SYSTEM_ACTIONS = ("create", "read", "update", "delete", "list")
SCOPE_ACTIONS = ("pull", "push", "delete")


def cells(columns: tuple[str, ...]) -> list[Any]:
    """One case per cell of ``columns``: ``(column, resource, action, allowed)``."""
    return [
        pytest.param(column, resource, action, row[column], id=f"{column}-{resource}-{action}")
        for column in columns
        for (resource, action), row in HARBOR.items()
    ]


def rows() -> list[Any]:
    return [
        pytest.param(resource, action, id=f"{resource}-{action}") for resource, action in HARBOR
    ]


# --- helpers -------------------------------------------------------------------


def user_make(name: str, *, admin: bool = False):
    users = get_user_model().objects
    if admin:
        return users.create_superuser(name, password=None)
    return users.create_user(name, password=None)


def member_make(project: Project, role: str, *, name: str = "member"):
    """A user bound directly to ``role`` in ``project``."""
    user = user_make(name)
    subject = Subject("user", user.username)
    binding_set(project=project, subject=subject, role=Role(role), actor=SYSTEM)
    return user


def group_member_make(project: Project, role: str, *, name: str = "member", group: str = "team"):
    """A user who holds ``role`` in ``project`` only through a Django group."""
    user = user_make(name)
    binding_set(project=project, subject=Subject("group", group), role=Role(role), actor=SYSTEM)
    user.groups.add(Group.objects.get(name=group))
    return user


def visitor(kind: str) -> Principal:
    """An anonymous visitor, or a logged-in user who is a member of nothing."""
    return ANONYMOUS if kind == "anonymous" else principal_for_user(user_make("passer-by"))


def allowed(principal: Principal, permission: Permission, project: Project | str | None) -> bool:
    return authorize(principal, permission, project).allowed


def check_cell(principal: Principal, permission: Permission, project: Project, expected: bool):
    decision = authorize(principal, permission, project)
    harbor = "allows" if expected else "denies"
    assert decision.allowed is expected, f"Harbor {harbor} this; harborpy said {decision}"


def repository_allowed(principal: Principal, name: str, action: str) -> bool:
    return authorize_scope(principal, Resource("repository", name), action).allowed


@pytest.fixture
def private(db) -> Project:
    return project_create(name="private-p")


@pytest.fixture
def public(db) -> Project:
    return project_create(name="public-p", public=True)


# --- the table itself ------------------------------------------------------------


def test_the_table_has_a_row_for_every_permission_in_the_code():
    in_code = {(str(resource), str(action)) for resource, action in ALL_PERMISSIONS}
    assert {
        "in the code, missing from the table": sorted(in_code - HARBOR.keys()),
        "in Harbor's table, missing from the code": sorted(HARBOR.keys() - in_code),
    } == {
        "in the code, missing from the table": [],
        "in Harbor's table, missing from the code": [],
    }


def test_the_table_has_a_column_for_every_role():
    assert sorted(ROLES) == sorted(role.value for role in Role)


# --- project roles, one case per cell ------------------------------------------------


@pytest.mark.parametrize(("role", "resource", "action", "expected"), cells(ROLES))
def test_a_role_bound_to_the_user(private, role, resource, action, expected):
    user = member_make(private, role)
    check_cell(principal_for_user(user), (resource, action), private, expected)


@pytest.mark.parametrize(("role", "resource", "action", "expected"), cells(ROLES))
def test_a_role_held_through_a_group(private, role, resource, action, expected):
    user = group_member_make(private, role)
    check_cell(principal_for_user(user), (resource, action), private, expected)


@pytest.mark.parametrize(("who", "resource", "action", "expected"), cells(PUBLIC_VISITORS))
def test_a_public_project_to_non_members(public, who, resource, action, expected):
    check_cell(visitor(who), (resource, action), public, expected)


def test_a_direct_and_a_group_binding_add_up(private):
    user = member_make(private, "guest")
    binding_set(
        project=private, subject=Subject("group", "devs"), role=Role.DEVELOPER, actor=SYSTEM
    )
    user.groups.add(Group.objects.get(name="devs"))
    principal = principal_for_user(user)
    wrong = [
        (permission, row["guest"] or row["developer"])
        for permission, row in HARBOR.items()
        if allowed(principal, permission, private) != (row["guest"] or row["developer"])
    ]
    assert wrong == [], "(permission, expected) pairs answered otherwise"


def test_a_member_of_a_public_project_keeps_the_public_rights(public):
    """A limited guest of a public project still gets what every visitor gets."""
    principal = principal_for_user(member_make(public, "limitedGuest"))
    wrong = [
        permission
        for permission, row in HARBOR.items()
        if allowed(principal, permission, public) != (row["limitedGuest"] or row["anonymous"])
    ]
    assert wrong == []


# --- system level ------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize(("resource", "action"), rows())
def test_the_system_admin_may_do_everything_in_every_project(db, visibility, resource, action):
    project = project_create(name="somebody-elses", public=visibility == "public")
    admin = principal_for_user(user_make("root", admin=True))
    assert allowed(admin, (resource, action), project)


def test_the_system_admin_holds_every_system_permission(db):
    admin = principal_for_user(user_make("root", admin=True))
    refused = [
        (str(resource), action)
        for resource in System
        for action in SYSTEM_ACTIONS
        if not allowed(admin, (resource, action), None)
    ]
    assert refused == []
    assert authorize_scope(admin, Resource("registry", "catalog"), "*").allowed


def test_project_creation_defaults_to_everyone(db):
    user = principal_for_user(user_make("alice"))
    assert allowed(user, ("project", "create"), None)


@pytest.mark.parametrize("restriction", ["adminonly", "everyone"])
def test_a_user_holds_no_system_permission_but_project_creation(db, restriction):
    setting_set(key=PROJECT_CREATION, value=restriction, actor=SYSTEM)
    user = principal_for_user(user_make("alice"))
    granted = [
        (str(resource), action)
        for resource in System
        for action in SYSTEM_ACTIONS
        if allowed(user, (resource, action), None)
    ]
    assert granted == ([("project", "create")] if restriction == "everyone" else [])
    assert not authorize_scope(user, Resource("registry", "catalog"), "*").allowed
    admin = principal_for_user(user_make("root", admin=True))
    assert allowed(admin, ("project", "create"), None), "the admin creates projects either way"


@pytest.mark.parametrize("restriction", ["adminonly", "everyone"])
def test_anonymous_and_robots_never_create_projects(private, restriction):
    setting_set(key=PROJECT_CREATION, value=restriction, actor=SYSTEM)
    project_robot, _ = robot_create(
        name="ci",
        permissions=[{"project": private.name, "actions": ["pull", "push", "delete"]}],
        project=private,
        actor=SYSTEM,
    )
    system_robot, _ = robot_create(
        name="everywhere",
        permissions=[{"project": "*", "actions": ["pull", "push", "delete"]}],
        actor=SYSTEM,
    )
    for principal in (
        ANONYMOUS,
        principal_for_robot(project_robot),
        principal_for_robot(system_robot),
    ):
        assert not allowed(principal, ("project", "create"), None), principal.name


@pytest.mark.parametrize("who", ["anonymous", "non-member"])
@pytest.mark.parametrize(("resource", "action"), rows())
def test_a_private_project_is_closed_to_non_members(private, who, resource, action):
    assert not allowed(visitor(who), (resource, action), private)


def test_an_unknown_project_answers_like_a_private_one(private):
    """The same Decision, reason included, so a project's existence does not leak."""
    other = project_create(name="other-p")
    robot, _ = robot_create(
        name="ci",
        permissions=[{"project": other.name, "actions": ["pull", "push", "delete"]}],
        project=other,
        actor=SYSTEM,
    )
    principals = {
        "anonymous": ANONYMOUS,
        "non-member": principal_for_user(user_make("stranger")),
        "member elsewhere": principal_for_user(member_make(other, "projectAdmin", name="owner")),
        "robot elsewhere": principal_for_robot(robot),
    }
    differ = [
        (who, permission)
        for who, principal in principals.items()
        for permission in HARBOR
        if authorize(principal, permission, "no-such-project")
        != authorize(principal, permission, private)
    ]
    assert differ == []
    assert not authorize(principals["anonymous"], ("repository", "pull"), "no-such-project").allowed


@pytest.mark.parametrize(("resource", "action"), READ_ONLY_WRITES)
def test_read_only_mode_refuses_writes_even_to_the_admin(private, settings, resource, action):
    owner = principal_for_user(member_make(private, "projectAdmin"))
    admin = principal_for_user(user_make("root", admin=True))
    assert allowed(admin, (resource, action), private), "allowed before the switch"
    assert allowed(owner, (resource, action), private), "allowed before the switch"
    settings.HARBORPY_READ_ONLY = True
    assert not allowed(admin, (resource, action), private)
    assert not allowed(owner, (resource, action), private)


def test_read_only_mode_still_serves_pulls(private, public, settings):
    settings.HARBORPY_READ_ONLY = True
    admin = principal_for_user(user_make("root", admin=True))
    developer = principal_for_user(member_make(private, "developer"))
    assert allowed(admin, ("repository", "pull"), private)
    assert allowed(developer, ("repository", "pull"), private)
    assert allowed(ANONYMOUS, ("repository", "pull"), public)
    assert repository_allowed(developer, "private-p/app", "pull")
    assert not repository_allowed(developer, "private-p/app", "push")
    assert not repository_allowed(admin, "private-p/app", "delete")


# --- robots, asked as /v2/ asks ---------------------------------------------------


def robot_make(project: Project | None, actions: list[str], *, target: str | None = None):
    target = target or (project.name if project else "*")
    robot, _ = robot_create(
        name="ci" if project else "everywhere",
        permissions=[{"project": target, "actions": actions}],
        project=project,
        actor=SYSTEM,
    )
    return principal_for_robot(robot)


@pytest.mark.parametrize(
    "actions",
    [["pull"], ["push"], ["pull", "push"], ["delete"], ["pull", "push", "delete"]],
    ids="+".join,
)
def test_a_robot_may_do_exactly_what_its_permissions_list(private, actions):
    robot = robot_make(private, actions)
    got = {action: repository_allowed(robot, "private-p/app", action) for action in SCOPE_ACTIONS}
    assert got == {action: action in actions for action in SCOPE_ACTIONS}
    for action in SCOPE_ACTIONS:
        assert allowed(robot, ("repository", action), private) is (action in actions)


def test_a_project_robot_stays_in_its_project(private):
    elsewhere = project_create(name="elsewhere")
    robot = robot_make(private, ["pull", "push", "delete"])
    for action in SCOPE_ACTIONS:
        assert repository_allowed(robot, "private-p/app", action)
        assert not repository_allowed(robot, "elsewhere/app", action)
    assert not any(allowed(robot, permission, elsewhere) for permission in HARBOR)


def test_a_system_robot_for_every_project_works_in_every_project(private):
    project_create(name="elsewhere")
    project_create(name="created-later", public=True)
    robot = robot_make(None, ["pull", "push"])
    for repository in ("private-p/app", "elsewhere/app", "created-later/deep/app"):
        assert repository_allowed(robot, repository, "pull"), repository
        assert repository_allowed(robot, repository, "push"), repository
        assert not repository_allowed(robot, repository, "delete"), repository
    assert not repository_allowed(robot, "no-such-project/app", "pull")


def test_a_robot_is_not_the_system_admin(private):
    robot = robot_make(None, ["pull", "push", "delete"])
    assert not any(allowed(robot, (r, a), None) for r in System for a in SYSTEM_ACTIONS)
    assert not authorize_scope(robot, Resource("registry", "catalog"), "*").allowed


# --- tokens ------------------------------------------------------------------------


def token_cases() -> list[Any]:
    return [
        pytest.param(column, action, id=f"{column}-{action}")
        for column in (*ROLES, *PUBLIC_VISITORS)
        for action in SCOPE_ACTIONS
    ]


def scope_permission(action: str) -> Permission:
    """The row a token-spec action on a repository stands for."""
    return ("repository", action)


@pytest.mark.parametrize(("column", "action"), token_cases())
def test_a_token_grants_the_request_cut_down_to_the_role(private, public, settings, column, action):
    if column in ROLES:
        project, principal = private, principal_for_user(member_make(private, column))
    else:
        project, principal = public, visitor(column)
    expected = HARBOR[scope_permission(action)][column]
    repository = f"{project.name}/app"
    scope = scope_parse(f"repository:{repository}:pull,push,delete")
    issued = token_issue(
        principal=principal, scopes=[scope], service=settings.HARBORPY_TOKEN_SERVICE
    )
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    [access] = claims["access"]
    assert (access["type"], access["name"]) == ("repository", repository)
    wanted = [a for a in SCOPE_ACTIONS if HARBOR[scope_permission(a)][column]]
    assert access["actions"] == wanted, "the grant is the request intersected with the role"
    assert (action in access["actions"]) is expected
    verified = token_verify(issued["token"])
    assert verified.subject == principal.subject
    assert repository_allowed(verified, repository, action) is expected


def test_a_token_grants_nothing_for_private_and_unknown_projects_alike(private, settings):
    stranger = principal_for_user(user_make("stranger"))
    grants = []
    for name in ("private-p/app", "no-such-project/app"):
        scope = scope_parse(f"repository:{name}:pull,push,delete")
        issued = token_issue(
            principal=stranger, scopes=[scope], service=settings.HARBORPY_TOKEN_SERVICE
        )
        claims = jwt.decode(issued["token"], options={"verify_signature": False})
        grants.append(claims["access"][0]["actions"])
    assert grants == [[], []]


def claims_make(settings, **changes: Any) -> dict[str, Any]:
    """Claims as the token service writes them: a developer's pull and push on ``a/app``."""
    now = int(time.time())
    claims = {
        "iss": settings.HARBORPY_TOKEN_ISSUER,
        "sub": "alice",
        "aud": settings.HARBORPY_TOKEN_SERVICE,
        "exp": now + 300,
        "nbf": now - 1,
        "iat": now,
        "jti": "test-token",
        "access": [{"type": "repository", "name": "a/app", "actions": ["pull", "push"]}],
        "kind": "user",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], private_key: Any = None) -> str:
    key = signing_key()
    return jwt.encode(
        claims, private_key or key.private, algorithm="RS256", headers={"kid": key.kid}
    )


def test_a_token_crafted_with_the_real_key_is_accepted(db, settings):
    """The baseline the forgeries below differ from in one respect each."""
    principal = token_verify(sign(claims_make(settings)))
    assert principal.subject == "alice"
    assert repository_allowed(principal, "a/app", "push")
    assert not repository_allowed(principal, "a/app", "delete")


def test_a_token_for_repository_a_does_not_open_repository_b(db, settings):
    a, b = project_create(name="a"), project_create(name="b")
    alice = user_make("alice")
    for project in (a, b):
        binding_set(
            project=project, subject=Subject("user", "alice"), role=Role.DEVELOPER, actor=SYSTEM
        )
    issued = token_issue(
        principal=principal_for_user(alice),
        scopes=[scope_parse("repository:a/app:pull,push")],
        service=settings.HARBORPY_TOKEN_SERVICE,
    )
    principal = token_verify(issued["token"])
    assert repository_allowed(principal, "a/app", "push")
    for name in ("b/app", "a/other", "a/app/sub"):
        for action in SCOPE_ACTIONS:
            assert not repository_allowed(principal, name, action), (name, action)
    assert not authorize_scope(principal, Resource("registry", "catalog"), "*").allowed


@pytest.mark.parametrize(
    "forgery",
    [
        "signed-by-another-key",
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "no-access-claim",
        "no-expiry",
        "unsigned",
        "garbage",
        "empty",
        "three-dots",
    ],
)
def test_a_token_that_fails_verification_is_refused(db, settings, forgery):
    now = int(time.time())
    if forgery == "signed-by-another-key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = sign(claims_make(settings), other)
    elif forgery == "expired":
        token = sign(claims_make(settings, iat=now - 600, nbf=now - 600, exp=now - 60))
    elif forgery == "not-yet-valid":
        token = sign(claims_make(settings, nbf=now + 600, exp=now + 900))
    elif forgery == "wrong-audience":
        token = sign(claims_make(settings, aud="another-registry"))
    elif forgery == "wrong-issuer":
        token = sign(claims_make(settings, iss="somebody-else"))
    elif forgery == "no-access-claim":
        token = sign(claims_make(settings, access=None))
    elif forgery == "no-expiry":
        token = sign(claims_make(settings, exp=None))
    elif forgery == "unsigned":
        token = jwt.encode(claims_make(settings), None, algorithm="none")
    elif forgery == "garbage":
        token = "this is not a token"
    elif forgery == "empty":
        token = ""
    else:
        token = "a.b.c"
    with pytest.raises(CredentialsInvalid):
        token_verify(token)
