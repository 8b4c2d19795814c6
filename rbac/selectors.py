"""Reads of identity and access: what a principal may see, members, robots, users, groups."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Q, QuerySet

from projects.models import Project

from .models import Robot, RoleBinding
from .policy import Kind, Principal
from .roles import PUBLIC_PERMISSIONS, ROBOT_ACTION_PERMISSIONS, ROLE_PERMISSIONS, Permission, Role


def _binding_subject(principal: Principal) -> Q | None:
    if principal.kind is Kind.USER:
        return Q(user_id=principal.user_id) | Q(group__user__id=principal.user_id)
    if principal.kind is Kind.ROBOT:
        return Q(robot_id=principal.robot_id)
    return None


def visible_projects(principal: Principal) -> QuerySet[Project]:
    """The projects ``principal`` may see: all for admins; else public ones and its own."""
    projects = Project.objects.all()
    if principal.is_admin:
        return projects
    if principal.token_access is not None:  # a registry token opens no API
        return projects.none()
    seen = Q(public=True)
    subject = _binding_subject(principal)
    if subject is not None:
        bound = RoleBinding.objects.filter(subject).values("project_id")
        seen |= Q(pk__in=bound)
    robot_projects = [e.get("project") for e in principal.robot_permissions]
    if "*" in robot_projects:
        return projects
    if robot_projects:
        seen |= Q(name__in=robot_projects)
    return projects.filter(seen)


def projects_permitting(principal: Principal, permission: Permission) -> QuerySet[Project]:
    """The projects where ``principal`` may do ``permission``, in one query.

    The list form of ``policy.authorize`` for one permission, read from the same
    role table: roles that grant it, public projects if the public may, a
    robot's permission list.  (tests/rbac checks the two agree.)
    """
    projects = Project.objects.all()
    if principal.is_admin:
        return projects
    if principal.token_access is not None:
        return projects.none()
    allowed = Q(public=True) if permission in PUBLIC_PERMISSIONS else Q(pk__in=[])
    roles = [role for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
    subject = _binding_subject(principal)
    if subject is not None and roles:
        allowed |= Q(
            pk__in=RoleBinding.objects.filter(subject, role__in=roles).values("project_id")
        )
    robot_projects = [
        entry.get("project")
        for entry in principal.robot_permissions
        if any(
            permission in ROBOT_ACTION_PERMISSIONS.get(action, frozenset())
            for action in entry.get("actions", ())
        )
    ]
    if "*" in robot_projects:
        return projects
    if robot_projects:
        allowed |= Q(name__in=robot_projects)
    return projects.filter(allowed)


def roles_in_projects(principal: Principal, project_ids: Iterable[int]) -> dict[int, list[Role]]:
    """Each project's roles held by ``principal`` (directly or by group), in one query."""
    subject = _binding_subject(principal)
    found: dict[int, list[Role]] = {}
    if subject is None:
        return found
    rows = RoleBinding.objects.filter(subject, project_id__in=list(project_ids))
    for project_id, role in rows.values_list("project_id", "role").distinct():
        found.setdefault(project_id, []).append(Role(role))
    for roles in found.values():
        roles.sort(key=list(Role).index)
    return found


def role_counts(project: Project) -> dict[Role, int]:
    """How many bindings hold each role in ``project``."""
    counts = {role: 0 for role in Role}
    for role in RoleBinding.objects.filter(project=project).values_list("role", flat=True):
        counts[Role(role)] += 1
    return counts


def project_list_visible(*, principal: Principal, query: str = "") -> QuerySet[Project]:
    """``visible_projects`` by name; ``query`` filters by name."""
    projects = visible_projects(principal).order_by("name")
    return projects.filter(name__icontains=query) if query else projects


def project_roles(*, principal: Principal) -> dict[int, Role]:
    """``{project id: the most privileged role principal holds there}``."""
    subject = _binding_subject(principal)
    if subject is None:
        return {}
    project_ids = RoleBinding.objects.filter(subject).values_list("project_id", flat=True)
    return {pid: roles[0] for pid, roles in roles_in_projects(principal, project_ids).items()}


def robot_list(*, project: Project) -> QuerySet[Robot]:
    """A project's robot accounts, by name."""
    return Robot.objects.filter(project=project).order_by("name")


def robot_get(*, project: Project, robot_id: int) -> Robot | None:
    return Robot.objects.filter(project=project, id=robot_id).first()


def user_list():
    """Every user account, by name."""
    return get_user_model().objects.order_by("username")


def user_get(*, user_id: int):
    return get_user_model().objects.filter(id=user_id).first()


def group_list() -> QuerySet[Group]:
    """Every group, by name, with its members and the number of projects it has a role in."""
    return (
        Group.objects.order_by("name")
        .annotate(projects=Count("role_bindings", distinct=True))
        .prefetch_related("user_set")
    )
