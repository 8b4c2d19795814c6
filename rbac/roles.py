"""The role table: what each project role may do, as data.

A permission is a (resource, action) pair inside one project, in Harbor's
vocabulary.  ``ROLE_PERMISSIONS`` gives each of Harbor's five project roles its
set; ``PUBLIC_PERMISSIONS`` is what anybody (anonymous included) may do in a
public project.  System-level permissions (creating projects, the catalog,
users, groups, settings) belong to the system admin and are decided in
``policy.authorize``.  Nothing else in the code base lists who may do what.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Harbor's project roles, from most to least privileged."""

    PROJECT_ADMIN = "projectAdmin"
    MAINTAINER = "maintainer"
    DEVELOPER = "developer"
    GUEST = "guest"
    LIMITED_GUEST = "limitedGuest"


class Res(StrEnum):
    """Resources inside a project."""

    PROJECT = "project"  # the project itself ("self" in Harbor)
    MEMBER = "member"
    METADATA = "metadata"
    LOG = "log"
    LABEL = "label"
    QUOTA = "quota"
    REPOSITORY = "repository"
    ARTIFACT = "artifact"
    ARTIFACT_ADDITION = "artifact-addition"  # build history, SBOM and other extras
    ARTIFACT_LABEL = "artifact-label"
    TAG = "tag"
    ACCESSORY = "accessory"  # signatures, SBOMs and other referrers
    ROBOT = "robot"
    TAG_RETENTION = "tag-retention"
    IMMUTABLE_TAG = "immutable-tag"
    CONFIGURATION = "configuration"
    SCAN = "scan"
    SCANNER = "scanner"
    NOTIFICATION_POLICY = "notification-policy"


class Act(StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    LIST = "list"
    PULL = "pull"
    PUSH = "push"
    OPERATE = "operate"
    STOP = "stop"


Permission = tuple[Res, Act]

CRUD = (Act.CREATE, Act.READ, Act.UPDATE, Act.DELETE)
CRUDL = (*CRUD, Act.LIST)


def _grant(resource: Res, *actions: Act) -> set[Permission]:
    return {(resource, action) for action in actions}


# Seeing what is in a project: artifacts, their tags, extras, referrers and scan results.
_SEE_ARTIFACTS = (
    _grant(Res.PROJECT, Act.READ)
    | _grant(Res.REPOSITORY, Act.LIST, Act.PULL)
    | _grant(Res.SCAN, Act.READ)
    | _grant(Res.SCANNER, Act.READ)
    | _grant(Res.TAG, Act.LIST)
    | _grant(Res.ACCESSORY, Act.LIST)
    | _grant(Res.ARTIFACT, Act.READ, Act.LIST)
    | _grant(Res.ARTIFACT_ADDITION, Act.READ)
)

# What a limited guest may do: pull, and see repositories, artifacts and tags, but not
# who else is in the project or what they did.  (Harbor's table as of 2.13.)
_LIMITED_GUEST = (
    _SEE_ARTIFACTS
    | _grant(Res.QUOTA, Act.READ)
    | _grant(Res.REPOSITORY, Act.READ)
    | _grant(Res.CONFIGURATION, Act.READ)
)

# A guest also sees members, labels and robots.
_GUEST = (
    _LIMITED_GUEST
    | _grant(Res.MEMBER, Act.READ, Act.LIST)
    | _grant(Res.LABEL, Act.READ, Act.LIST)
    | _grant(Res.ROBOT, Act.READ, Act.LIST)
)

# A developer pushes; deleting is for maintainers.
_DEVELOPER = (
    _GUEST
    | _grant(Res.REPOSITORY, Act.CREATE, Act.UPDATE, Act.PUSH)
    | _grant(Res.TAG_RETENTION, *CRUDL, Act.OPERATE)
    | _grant(Res.ARTIFACT, Act.CREATE)
    | _grant(Res.TAG, Act.CREATE)
    | _grant(Res.ARTIFACT_LABEL, Act.CREATE, Act.DELETE)
)

# A maintainer deletes, scans, labels, and sets immutability rules; project metadata
# is read-only to it (Harbor took the writes away for CVE-2024-22278).
_MAINTAINER = (
    _DEVELOPER
    | _grant(Res.METADATA, Act.READ)
    | _grant(Res.LABEL, *CRUDL)
    | _grant(Res.REPOSITORY, Act.DELETE)
    | _grant(Res.IMMUTABLE_TAG, Act.CREATE, Act.UPDATE, Act.DELETE, Act.LIST)
    | _grant(Res.NOTIFICATION_POLICY, Act.READ, Act.LIST)
    | _grant(Res.SCAN, Act.CREATE, Act.STOP)
    | _grant(Res.ARTIFACT, Act.DELETE)
    | _grant(Res.TAG, Act.DELETE)
)

# A project admin also manages the project, its metadata, members, robots and webhooks,
# and alone reads the project's logs (Harbor 2.13).
_PROJECT_ADMIN = (
    _MAINTAINER
    | _grant(Res.PROJECT, Act.UPDATE, Act.DELETE)
    | _grant(Res.METADATA, *CRUDL)
    | _grant(Res.LOG, Act.LIST)
    | _grant(Res.MEMBER, *CRUDL)
    | _grant(Res.CONFIGURATION, Act.UPDATE)
    | _grant(Res.ROBOT, *CRUDL)
    | _grant(Res.NOTIFICATION_POLICY, *CRUDL)
    | _grant(Res.SCANNER, Act.CREATE)
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PROJECT_ADMIN: frozenset(_PROJECT_ADMIN),
    Role.MAINTAINER: frozenset(_MAINTAINER),
    Role.DEVELOPER: frozenset(_DEVELOPER),
    Role.GUEST: frozenset(_GUEST),
    Role.LIMITED_GUEST: frozenset(_LIMITED_GUEST),
}

# Anybody, logged in or not, in a public project: read-only, no members or logs.
PUBLIC_PERMISSIONS: frozenset[Permission] = frozenset(
    _SEE_ARTIFACTS | _grant(Res.LABEL, Act.READ, Act.LIST)
)

# What a robot's permission list ("pull", "push", "delete") grants in its project.
ROBOT_ACTION_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "pull": frozenset(
        _grant(Res.REPOSITORY, Act.READ, Act.LIST, Act.PULL)
        | _grant(Res.ARTIFACT, Act.READ, Act.LIST)
        | _grant(Res.TAG, Act.LIST)
        | _grant(Res.ACCESSORY, Act.LIST)
        | _grant(Res.ARTIFACT_ADDITION, Act.READ)
    ),
    "push": frozenset(
        _grant(Res.REPOSITORY, Act.CREATE, Act.PUSH)
        | _grant(Res.ARTIFACT, Act.CREATE)
        | _grant(Res.TAG, Act.CREATE)
    ),
    "delete": frozenset(
        _grant(Res.REPOSITORY, Act.DELETE)
        | _grant(Res.ARTIFACT, Act.DELETE)
        | _grant(Res.TAG, Act.DELETE)
    ),
}

# Every project permission there is: the rows of the matrix.
ALL_PERMISSIONS: frozenset[Permission] = frozenset().union(*ROLE_PERMISSIONS.values())


# Harbor's numeric role ids, as its REST API speaks them (role_id in project members).
ROLE_IDS: dict[Role, int] = {
    Role.PROJECT_ADMIN: 1,
    Role.DEVELOPER: 2,
    Role.GUEST: 3,
    Role.MAINTAINER: 4,
    Role.LIMITED_GUEST: 5,
}
ROLES_BY_ID: dict[int, Role] = {number: role for role, number in ROLE_IDS.items()}


def role_rank(role: Role) -> int:
    """0 for the most privileged role; larger is less."""
    return list(Role).index(role)
