"""The one function that decides access, and the vocabulary it speaks.

``authorize(principal, permission, project)`` answers every question of the
form "may this principal do (resource, action) in this project?" from the role
table (``roles``), the principal's role bindings (its own and its groups'),
a robot's permission list and a project's public flag.  With no project it
decides system-level permissions (creating projects, the catalog, users and
settings).  ``authorize_scope`` speaks the token spec's vocabulary
(``repository:lib/app:pull``) for /v2/ and the token service and maps onto it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.db.models import Q

from projects.models import Project
from projects.selectors import Visibility, project_visibility

from .models import RoleBinding, SystemSetting
from .roles import (
    PUBLIC_PERMISSIONS,
    ROBOT_ACTION_PERMISSIONS,
    ROLE_PERMISSIONS,
    Act,
    Permission,
    Res,
    Role,
)


class Action(StrEnum):
    """What a /v2/ request does to a resource (the token spec's action names)."""

    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    LIST = "*"  # enumerate the registry (_catalog)


class System(StrEnum):
    """Resources outside any project: only the system admin acts on them (see authorize)."""

    PROJECT = "project"  # create
    CATALOG = "catalog"  # list every repository
    USER = "user"
    GROUP = "group"
    ROBOT = "system-robot"
    SETTING = "setting"
    AUDIT_LOG = "audit-log"
    QUOTA = "quota"  # every project's quota and the storage used in all
    LABEL = "system-label"  # global labels: create, update, delete
    GC = "gc"  # garbage collection: list runs, start one
    PURGE_AUDIT = "purge-audit"  # audit log rotation: list runs, start one, the schedule
    REPLICATION = "replication"  # endpoints, policies, executions


class Kind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    ROBOT = "robot"


# Project creation: who may (a system setting an admin changes at run time).
PROJECT_CREATION = "project_creation_restriction"
ADMIN_ONLY, EVERYONE = "adminonly", "everyone"
PROJECT_CREATION_CHOICES = (ADMIN_ONLY, EVERYONE)

# Writes the read-only switch refuses.
WRITES = frozenset(
    {
        (Res.REPOSITORY, Act.PUSH),
        (Res.REPOSITORY, Act.DELETE),
        (Res.REPOSITORY, Act.CREATE),
        (Res.ARTIFACT, Act.CREATE),
        (Res.ARTIFACT, Act.DELETE),
        (Res.TAG, Act.CREATE),
        (Res.TAG, Act.DELETE),
    }
)

# Token-spec actions on a repository, as permissions of the role table.
SCOPE_PERMISSIONS: dict[str, Permission] = {
    Action.PULL: (Res.REPOSITORY, Act.PULL),
    Action.PUSH: (Res.REPOSITORY, Act.PUSH),
    Action.DELETE: (Res.REPOSITORY, Act.DELETE),
}


@dataclass(eq=False)
class Principal:
    """Who is asking.

    A user (with their groups), a robot (with its permission list), or nobody.
    ``token_access`` is set when the request came with a bearer token: then the
    principal may do exactly what the token grants, as the token spec says.
    """

    kind: Kind = Kind.ANONYMOUS
    name: str | None = None
    user_id: int | None = None
    robot_id: int | None = None
    is_admin: bool = False
    robot_permissions: tuple[dict, ...] = ()
    token_access: frozenset[tuple[str, str, str]] | None = None
    _projects: dict[str, frozenset[Permission]] = field(default_factory=dict, repr=False)

    @property
    def is_anonymous(self) -> bool:
        return self.kind is Kind.ANONYMOUS

    @property
    def subject(self) -> str:
        """The token's ``sub``: the login name, or empty for anonymous."""
        return self.name or ""


# For comparisons and tests; requests get a fresh Principal each, since a principal
# remembers its permissions per project for the life of one request.
ANONYMOUS = Principal()


@dataclass(frozen=True)
class Resource:
    """What is asked for, in the token spec's terms: ``repository:library/app``."""

    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOW = Decision(True)
DENY = Decision(False, "requested access to the resource is denied")


def authorize(
    principal: Principal, permission: tuple[str, str], project: Project | str | None = None
) -> Decision:
    """Decide whether ``principal`` may do ``permission`` in ``project`` (or system-wide).

    A project is a Project or its name.  An unknown project is denied to all but
    the system admin with the same answer as a private one, so names do not leak.
    """
    resource, action = permission
    if (resource, action) in WRITES and settings.HARBORPY_READ_ONLY:
        return Decision(False, "the registry is in read-only mode")
    if principal.token_access is not None:
        # A bearer token grants the repository access it names (authorize_scope) and nothing else.
        return Decision(False, "a registry token grants only the repository access it names")
    if project is None:
        return _authorize_system(principal, resource, action)
    if principal.is_admin:
        return ALLOW
    return ALLOW if (resource, action) in project_permissions(principal, project) else DENY


def authorize_scope(principal: Principal, resource: Resource, action: str) -> Decision:
    """Decide one token-spec access (``repository:<name>:<action>``, ``registry:catalog:*``)."""
    if principal.token_access is not None:
        granted = (resource.type, resource.name, action) in principal.token_access
        return ALLOW if granted else DENY
    if resource.type == "registry" and resource.name == "catalog" and action == Action.LIST:
        return authorize(principal, (System.CATALOG, Act.LIST))
    if resource.type != "repository" or action not in SCOPE_PERMISSIONS:
        return DENY
    project = resource.name.split("/", 1)[0]
    return authorize(principal, SCOPE_PERMISSIONS[action], project)


def project_permissions(principal: Principal, project: Project | str) -> frozenset[Permission]:
    """Everything ``principal`` may do in ``project``: public access, role bindings, robot rights.

    Remembered on the principal, which lives for one request.
    """
    name = project if isinstance(project, str) else project.name
    cached = principal._projects.get(name)
    if cached is not None:
        return cached
    row = (
        project_visibility(name=name)
        if isinstance(project, str)
        else Visibility(project.pk, project.name, project.public)
    )
    permissions: frozenset[Permission] = frozenset()
    if row is not None:
        granted: set[Permission] = set(PUBLIC_PERMISSIONS) if row.public else set()
        for role in _bound_roles(principal, row.id):
            granted |= ROLE_PERMISSIONS[role]
        for entry in principal.robot_permissions:
            if entry.get("project") in (row.name, "*"):
                for robot_action in entry.get("actions", ()):
                    granted |= ROBOT_ACTION_PERMISSIONS.get(robot_action, frozenset())
        permissions = frozenset(granted)
    principal._projects[name] = permissions
    return permissions


def project_role(principal: Principal, project: Project) -> Role | None:
    """The most privileged role ``principal`` holds in ``project`` (directly or by group)."""
    roles = _bound_roles(principal, project.pk)
    return min(roles, key=list(Role).index) if roles else None


def _bound_roles(principal: Principal, project_id: int) -> set[Role]:
    if principal.kind is Kind.USER:
        subject = Q(user_id=principal.user_id) | Q(group__user__id=principal.user_id)
    elif principal.kind is Kind.ROBOT:
        subject = Q(robot_id=principal.robot_id)
    else:
        return set()
    rows = RoleBinding.objects.filter(subject, project_id=project_id).values_list("role", flat=True)
    return {Role(role) for role in rows}


def _authorize_system(principal: Principal, resource: str, action: str) -> Decision:
    if principal.is_admin:
        return ALLOW
    if resource == System.PROJECT and action == Act.CREATE and principal.kind is Kind.USER:
        if project_creation_restriction() == EVERYONE:
            return ALLOW
        return Decision(False, "only system administrators may create projects")
    return DENY


def project_creation_restriction() -> str:
    """Who may create projects: ``everyone`` (any logged-in user, the default) or ``adminonly``."""
    row = SystemSetting.objects.filter(key=PROJECT_CREATION).first()
    return row.value if row is not None else EVERYONE
