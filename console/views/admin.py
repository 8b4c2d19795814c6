"""Administration (system admins): users, groups, system settings, the audit log."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.selectors import audit_actions, audit_list, audit_verify
from rbac.bindings import setting_set
from rbac.exceptions import PasswordInvalid, UserChangeDenied, UserExists, UserInvalid
from rbac.policy import PROJECT_CREATION, PROJECT_CREATION_CHOICES, project_creation_restriction
from rbac.selectors import group_list, user_get, user_list
from rbac.users import user_create, user_set_active, user_set_admin

from ..access import actor_of, console_page, system_access
from ..forms import flag

PAGE_SIZE = 50


@console_page("GET", "POST")
def users_page(request: HttpRequest) -> HttpResponse:
    """Every account; POST creates a local user with a password."""
    if request.method == "POST":
        system_access(request, "change_users")
        try:
            user = user_create(
                username=request.POST.get("username", "").strip(),
                password=request.POST.get("password", ""),
                email=request.POST.get("email", "").strip(),
                actor=actor_of(request),
            )
        except (UserInvalid, UserExists, PasswordInvalid) as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"User {user.get_username()} was created.")
        return redirect("console:admin_users")
    context = {"can": system_access(request, "see_users"), "users": user_list(), "area": "users"}
    return render(request, "console/admin_users.html", context)


@console_page("POST")
def user_admin_page(request: HttpRequest, user_id: int) -> HttpResponse:
    """Grant or revoke system admin rights."""
    system_access(request, "change_users")
    return _user_change(request, user_id, user_set_admin, admin=flag(request.POST, "admin"))


@console_page("POST")
def user_active_page(request: HttpRequest, user_id: int) -> HttpResponse:
    """Disable or enable an account."""
    system_access(request, "change_users")
    return _user_change(request, user_id, user_set_active, active=flag(request.POST, "active"))


def _user_change(request: HttpRequest, user_id: int, service, **change: bool) -> HttpResponse:
    user = user_get(user_id=user_id)
    if user is None:
        raise Http404("no such user")
    try:
        service(user=user, actor=actor_of(request), **change)
    except UserChangeDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"User {user.get_username()} was changed.")
    return redirect("console:admin_users")


@console_page("GET")
def groups_page(request: HttpRequest) -> HttpResponse:
    context = {
        "can": system_access(request, "see_groups"),
        "groups": group_list(),
        "area": "groups",
    }
    return render(request, "console/admin_groups.html", context)


@console_page("GET", "POST")
def settings_page(request: HttpRequest) -> HttpResponse:
    """System settings: who may create projects."""
    can = system_access(request, "change_settings")
    if request.method == "POST":
        value = request.POST.get(PROJECT_CREATION, "")
        if value in PROJECT_CREATION_CHOICES:
            setting_set(key=PROJECT_CREATION, value=value, actor=actor_of(request))
            messages.success(request, "The settings were saved.")
        else:
            messages.error(request, f"{PROJECT_CREATION} is one of {PROJECT_CREATION_CHOICES}")
        return redirect("console:admin_settings")
    context = {
        "can": can,
        "area": "settings",
        "restriction": project_creation_restriction(),
        "choices": PROJECT_CREATION_CHOICES,
    }
    return render(request, "console/admin_settings.html", context)


@console_page("GET")
def audit_page(request: HttpRequest) -> HttpResponse:
    """The whole audit log, newest first, by actor and action, with the chain's check."""
    can = system_access(request, "see_audit_log")
    actor = request.GET.get("actor", "").strip()
    action = request.GET.get("action", "").strip()
    entries = audit_list(actor=actor, action=action)
    context = {
        "can": can,
        "area": "audit",
        "page": Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page")),
        "actor": actor,
        "action": action,
        "actions": audit_actions(),
        "keep": urlencode({"actor": actor, "action": action}) + "&",
        "chain": audit_verify(),
    }
    return render(request, "console/admin_audit.html", context)
