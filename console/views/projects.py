"""Projects: the list (with creation), and a project's repositories, logs and settings tabs."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.selectors import audit_list
from distribution.selectors import project_usage, repository_list
from projects.exceptions import ProjectError
from projects.services import project_update
from proxycache.projects import (
    ProxyEndpointUnknown,
    endpoint_choices,
    proxy_project_create,
    proxy_upstream_name,
)
from rbac.bindings import project_create_owned
from rbac.models import ROBOT_PREFIX
from rbac.selectors import project_list_visible, project_roles

from ..access import (
    actor_of,
    console_page,
    principal_of,
    project_access,
    registry_host,
    system_access,
)
from ..forms import FieldInvalid, flag, size_parse

PAGE_SIZE = 50


@console_page("GET")
def home(request: HttpRequest) -> HttpResponse:
    return redirect("console:projects")


@console_page("GET", "POST")
def project_list(request: HttpRequest) -> HttpResponse:
    """The projects the user may see, searchable; POST creates one (if the user may)."""
    if request.method == "POST":
        system_access(request, "create_project")
        registry = request.POST.get("registry_id", "").strip()
        try:
            fields: dict[str, Any] = {
                "name": request.POST.get("name", "").strip(),
                "public": flag(request.POST, "public"),
                "quota_bytes": size_parse(request.POST.get("quota", "")),
                "owner": request.user,
                "actor": actor_of(request),
            }
            if registry:
                system_access(request, "create_proxy_cache")
                if not registry.isdigit():
                    raise FieldInvalid(f"{registry!r} is no registry endpoint")
                project = proxy_project_create(registry_id=int(registry), **fields)
            else:
                project = project_create_owned(**fields)
        except (ProjectError, FieldInvalid, ProxyEndpointUnknown) as error:
            messages.error(request, str(error))
            return redirect("console:projects")
        messages.success(request, f"Project {project.name} was created.")
        return redirect("console:project", name=project.name)
    principal = principal_of(request)
    query = request.GET.get("q", "").strip()
    roles = project_roles(principal=principal)
    can = system_access(request)
    context = {
        "rows": [
            (project, roles.get(project.pk))
            for project in project_list_visible(principal=principal, query=query)
        ],
        "query": query,
        "can": can,
        "endpoints": endpoint_choices() if can["create_proxy_cache"] else [],
    }
    return render(request, "console/project_list.html", context)


@console_page("GET")
def project_repositories(request: HttpRequest, name: str) -> HttpResponse:
    """The repositories tab: each with its artifact count and pull command."""
    access = project_access(request, name)
    query = request.GET.get("q", "").strip()
    context = {
        "access": access,
        "tab": "repositories",
        "repositories": repository_list(project=access.project, query=query),
        "query": query,
        "host": registry_host(request),
    }
    return render(request, "console/project_repositories.html", context)


@console_page("GET")
def project_logs(request: HttpRequest, name: str) -> HttpResponse:
    """The logs tab: audit entries about the project, its repositories and its robots."""
    access = project_access(request, name, "see_logs")
    entries = audit_list(
        resources=(f"project:{name}",),
        prefixes=(f"{name}/", f"{ROBOT_PREFIX}{name}+"),
    )
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"access": access, "tab": "logs", "page": page}
    return render(request, "console/project_logs.html", context)


@console_page("GET", "POST")
def project_settings(request: HttpRequest, name: str) -> HttpResponse:
    """The settings tab: visibility and quota with its usage; POST changes visibility."""
    if request.method == "POST":
        access = project_access(request, name, "change_visibility")
        public = flag(request.POST, "public")
        project_update(project=access.project, public=public, actor=actor_of(request))
        messages.success(request, f"{name} is now {'public' if public else 'private'}.")
        return redirect("console:project_settings", name=name)
    access = project_access(request, name)
    context = {
        "access": access,
        "tab": "settings",
        "usage": project_usage(project=access.project),
        "upstream": proxy_upstream_name(access.project),
    }
    return render(request, "console/project_settings.html", context)


@console_page("POST")
def project_quota(request: HttpRequest, name: str) -> HttpResponse:
    """Set or remove the project's storage quota (system admins, as in Harbor)."""
    access = project_access(request, name, "change_quota")
    try:
        quota = size_parse(request.POST.get("quota", ""))
        project_update(project=access.project, quota_bytes=quota, actor=actor_of(request))
    except (ProjectError, FieldInvalid) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The quota was saved.")
    return redirect("console:project_settings", name=name)
