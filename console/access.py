"""Resolve-and-authorize for console pages: one table of what a page may offer.

Every handler names the ability it needs (``"add_member"``); the same table
decides which buttons and forms a page renders, so a page never offers what
its POST handler would refuse, and a forged POST is refused all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from audit.services import Actor
from projects.exceptions import ProjectNotFound
from projects.models import Project
from projects.selectors import project_get
from rbac.credentials import client_address, principal_for_user
from rbac.policy import Principal, System, authorize
from rbac.roles import Act, Permission, Res

# What a project page may offer, by the name handlers and templates use.
PROJECT_ABILITIES: dict[str, Permission] = {
    "read": (Res.PROJECT, Act.READ),
    "see_members": (Res.MEMBER, Act.LIST),
    "add_member": (Res.MEMBER, Act.CREATE),
    "change_member": (Res.MEMBER, Act.UPDATE),
    "remove_member": (Res.MEMBER, Act.DELETE),
    "see_robots": (Res.ROBOT, Act.LIST),
    "create_robot": (Res.ROBOT, Act.CREATE),
    "change_robot": (Res.ROBOT, Act.UPDATE),
    "delete_robot": (Res.ROBOT, Act.DELETE),
    "see_logs": (Res.LOG, Act.LIST),
    "change_visibility": (Res.METADATA, Act.UPDATE),
    "change_quota": (Res.QUOTA, Act.UPDATE),
    "add_tag": (Res.TAG, Act.CREATE),
    "delete_tag": (Res.TAG, Act.DELETE),
    "delete_artifact": (Res.ARTIFACT, Act.DELETE),
    "see_retention": (Res.TAG_RETENTION, Act.LIST),
    "change_retention": (Res.TAG_RETENTION, Act.UPDATE),
    "run_retention": (Res.TAG_RETENTION, Act.OPERATE),
    "see_immutable": (Res.IMMUTABLE_TAG, Act.LIST),
    "add_immutable": (Res.IMMUTABLE_TAG, Act.CREATE),
    "remove_immutable": (Res.IMMUTABLE_TAG, Act.DELETE),
}

# What the administration pages may offer (system-level rights).
SYSTEM_ABILITIES: dict[str, tuple[str, str]] = {
    "create_project": (System.PROJECT, Act.CREATE),
    "create_proxy_cache": (System.REPLICATION, Act.CREATE),  # reaches out to a registry
    "see_users": (System.USER, Act.LIST),
    "change_users": (System.USER, Act.UPDATE),
    "see_groups": (System.GROUP, Act.LIST),
    "change_settings": (System.SETTING, Act.UPDATE),
    "see_audit_log": (System.AUDIT_LOG, Act.LIST),
    "see_gc": (System.GC, Act.LIST),
    "run_gc": (System.GC, Act.CREATE),
    # replication: endpoints, policies; executions are started (create) and stopped (update)
    "see_replication": (System.REPLICATION, Act.LIST),
    "create_replication": (System.REPLICATION, Act.CREATE),
    "change_replication": (System.REPLICATION, Act.UPDATE),
    "delete_replication": (System.REPLICATION, Act.DELETE),
    "schedule_gc": (System.GC, Act.UPDATE),
    "see_purge_audit": (System.PURGE_AUDIT, Act.LIST),
    "run_purge_audit": (System.PURGE_AUDIT, Act.CREATE),
    "schedule_purge_audit": (System.PURGE_AUDIT, Act.UPDATE),
}


def console_page(*methods: str) -> Callable:
    """A console handler: logged in (else to the login page), these methods, never cached."""

    def decorate(view: Callable) -> Callable:
        page = wraps(view)(never_cache(login_required(require_http_methods(methods)(view))))
        page.console_methods = frozenset(methods)  # type: ignore[attr-defined]  # for the tests
        return page

    return decorate


def principal_of(request: HttpRequest) -> Principal:
    principal = getattr(request, "_console_principal", None)
    if principal is None:
        principal = request._console_principal = principal_for_user(request.user)  # type: ignore[attr-defined]
    return principal


def actor_of(request: HttpRequest) -> Actor:
    return Actor(request.user.get_username(), client_address(request))


@dataclass
class ProjectAccess:
    """A project the principal may see, and what it may do there (``can.add_member``)."""

    project: Project
    principal: Principal
    can: dict[str, bool] = field(default_factory=dict)


def project_access(request: HttpRequest, name: str, ability: str = "read") -> ProjectAccess:
    """The project ``name`` if the user may see it (else 404, as for a missing one) and may
    do ``ability`` there (else 403)."""
    principal = principal_of(request)
    try:
        project = project_get(name=name)
    except ProjectNotFound:
        raise Http404("no such project") from None
    can = {
        key: authorize(principal, permission, project).allowed
        for key, permission in PROJECT_ABILITIES.items()
    }
    if not can["read"]:
        raise Http404("no such project")
    if not can[ability]:
        raise PermissionDenied(f"you may not {ability.replace('_', ' ')} in {project.name}")
    return ProjectAccess(project, principal, can)


def system_access(request: HttpRequest, ability: str | None = None) -> dict[str, bool]:
    """What the user may do system-wide; 403 if ``ability`` is given and not among it."""
    principal = principal_of(request)
    can = {
        key: authorize(principal, permission).allowed
        for key, permission in SYSTEM_ABILITIES.items()
    }
    if ability is not None and not can[ability]:
        raise PermissionDenied(f"you may not {ability.replace('_', ' ')}")
    return can


def registry_host(request: HttpRequest) -> str:
    """The registry's address as clients write it in ``docker pull HOST/...``."""
    return urlsplit(settings.HARBORPY_EXTERNAL_URL).netloc or request.get_host()
