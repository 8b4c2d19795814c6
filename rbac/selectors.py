"""Reads of the rbac app that scope lists to what a principal may see."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from projects.models import Project

from .models import RoleBinding
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
