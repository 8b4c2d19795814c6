"""Reads of identity and access: what a principal may see, members, robots, users, groups."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Q, QuerySet

from projects.models import Project

from .models import Robot, RoleBinding
from .policy import Kind, Principal
from .roles import Role


def project_list_visible(*, principal: Principal, query: str = "") -> QuerySet[Project]:
    """The projects ``principal`` may see, by name: public ones and those it holds a role in
    (its own or its groups'); the system admin sees all.  ``query`` filters by name."""
    projects = Project.objects.order_by("name")
    if query:
        projects = projects.filter(name__icontains=query)
    if principal.is_admin:
        return projects
    member = RoleBinding.objects.filter(_subject(principal)).values("project_id")
    return projects.filter(Q(public=True) | Q(id__in=member))


def project_roles(*, principal: Principal) -> dict[int, Role]:
    """``{project id: the most privileged role principal holds there}``."""
    roles: dict[int, Role] = {}
    rows = RoleBinding.objects.filter(_subject(principal)).values_list("project_id", "role")
    for project_id, role in rows:
        held = roles.get(project_id)
        if held is None or list(Role).index(Role(role)) < list(Role).index(held):
            roles[project_id] = Role(role)
    return roles


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


def _subject(principal: Principal) -> Q:
    if principal.kind is Kind.USER:
        return Q(user_id=principal.user_id) | Q(group__user__id=principal.user_id)
    if principal.kind is Kind.ROBOT:
        return Q(robot_id=principal.robot_id)
    return Q(pk__in=[])
