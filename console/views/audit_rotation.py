"""Administration > Audit log > Log rotation: purge old entries now or on a schedule."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.exceptions import PurgeBusy, PurgeInvalid
from audit.models import ACTIONS, PurgeStatus
from audit.rotation import audit_purge_start
from audit.schedule import KINDS, audit_purge_schedule_get, audit_purge_schedule_set
from audit.selectors import audit_purge_run_list

from ..access import actor_of, console_page, system_access
from ..forms import FieldInvalid, flag, hours_parse

PAGE_SIZE = 20


@console_page("GET", "POST")
def rotation_page(request: HttpRequest) -> HttpResponse:
    """Start a purge (dry run or not); the schedule; the runs with their counts and logs."""
    can = system_access(request, "see_purge_audit")
    if request.method == "POST":
        system_access(request, "run_purge_audit")
        dry_run = flag(request.POST, "dry_run")
        try:
            run = audit_purge_start(
                retention_hour=hours_parse(request.POST.get("retention_hour", "")),
                operations=request.POST.getlist("operations"),
                dry_run=dry_run,
                actor=actor_of(request),
            )
        except (FieldInvalid, PurgeInvalid) as error:
            messages.error(request, str(error))
        except PurgeBusy as error:
            messages.error(request, f"{error}; try again when it has finished.")
        else:
            kind = "dry run" if dry_run else "purge"
            messages.success(request, f"Audit log {kind} {run.pk} was started.")
        return redirect("console:admin_audit_rotation")
    page = Paginator(audit_purge_run_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "can": can,
        "area": "rotation",
        "page": page,
        "keep": "",
        "active": any(run.status in (PurgeStatus.PENDING, PurgeStatus.RUNNING) for run in page),
        "schedule": audit_purge_schedule_get(),
        "kinds": list(KINDS),
        "actions": ACTIONS,
    }
    return render(request, "console/admin_audit_rotation.html", context)


@console_page("POST")
def rotation_schedule_page(request: HttpRequest) -> HttpResponse:
    """Set the periodic rotation (type, cron, retention, operations, dry run)."""
    system_access(request, "schedule_purge_audit")
    try:
        schedule = audit_purge_schedule_set(
            kind=request.POST.get("type", ""),
            cron=request.POST.get("cron", ""),
            retention_hour=hours_parse(request.POST.get("retention_hour", "")),
            operations=request.POST.getlist("operations"),
            dry_run=flag(request.POST, "dry_run"),
            actor=actor_of(request),
        )
    except (FieldInvalid, PurgeInvalid) as error:
        messages.error(request, str(error))
    else:
        following = schedule.next_run()
        when = f"; next run {following:%Y-%m-%d %H:%M %Z}" if following else ""
        messages.success(request, f"The log rotation schedule is now {schedule.kind}{when}.")
    return redirect("console:admin_audit_rotation")
