"""Administration (system admins): users, groups, system settings, the audit log, GC."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.selectors import audit_actions, audit_list, audit_verify
from distribution.exceptions import GCBusy, ScheduleInvalid
from distribution.gc import gc_run_list, gc_schedule_get, gc_schedule_set, gc_start
from distribution.gc.schedule import KINDS
from distribution.models import GCRun, GCStatus
from rbac.bindings import setting_set
from rbac.exceptions import PasswordInvalid, UserChangeDenied, UserExists, UserInvalid
from rbac.policy import PROJECT_CREATION, PROJECT_CREATION_CHOICES, project_creation_restriction
from rbac.selectors import group_list, user_get, user_list
from rbac.users import user_create, user_set_active, user_set_admin

from ..access import actor_of, console_page, system_access
from ..charts import Chart, bytes_chart
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


@console_page("GET", "POST")
def gc_page(request: HttpRequest) -> HttpResponse:
    """Garbage collection: start a run, the runs with their counts and logs, bytes freed."""
    can = system_access(request, "see_gc")
    if request.method == "POST":
        system_access(request, "run_gc")
        dry_run = flag(request.POST, "dry_run")
        try:
            run = gc_start(
                dry_run=dry_run,
                untagged=flag(request.POST, "delete_untagged"),
                actor=actor_of(request),
            )
        except GCBusy as error:
            messages.error(request, f"{error}; try again when it has finished.")
        else:
            kind = "dry run" if dry_run else "run"
            messages.success(request, f"Garbage collection {kind} {run.pk} was started.")
        return redirect("console:admin_gc")
    page = Paginator(gc_run_list(), GC_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "can": can,
        "area": "gc",
        "page": page,
        "keep": "",
        "active": any(run.status in (GCStatus.PENDING, GCStatus.RUNNING) for run in page),
        "chart": gc_chart(list(gc_run_list()[:CHART_RUNS])),
        "schedule": gc_schedule_get(),
        "kinds": list(KINDS),
    }
    return render(request, "console/admin_gc.html", context)


@console_page("POST")
def gc_schedule_page(request: HttpRequest) -> HttpResponse:
    """Set the periodic garbage collection (type, cron, untagged manifests too)."""
    system_access(request, "schedule_gc")
    try:
        schedule = gc_schedule_set(
            kind=request.POST.get("type", ""),
            cron=request.POST.get("cron", ""),
            untagged=flag(request.POST, "delete_untagged"),
            actor=actor_of(request),
        )
    except ScheduleInvalid as error:
        messages.error(request, str(error))
    else:
        following = schedule.next_run()
        when = f"; next run {following:%Y-%m-%d %H:%M %Z}" if following else ""
        messages.success(request, f"The garbage-collection schedule is now {schedule.kind}{when}.")
    return redirect("console:admin_gc")


GC_PAGE_SIZE = 20
CHART_RUNS = 30


def gc_chart(runs: list[GCRun]) -> Chart:
    """Bars of bytes freed (would be freed, for dry runs) by finished run, oldest left."""
    done = [r for r in reversed(runs) if r.status in (GCStatus.SUCCEEDED, GCStatus.FAILED)]

    def color(run: GCRun) -> str:
        if run.status == GCStatus.FAILED:
            return "#b42318"
        return "#9cc3e6" if run.dry_run else "#1f6fb2"

    return bytes_chart(
        done,
        size=lambda run: run.bytes_freed,
        color=color,
        caption=lambda run: str(run.pk),
        status=lambda run: run.status,
        title=lambda run, size: (
            f"Run {run.pk}{' (dry run: would free)' if run.dry_run else ''}: {size}"
        ),
    )
