"""The periodic garbage collection: set by an admin (API, console), else HARBORPY_GC_SCHEDULE.

Celery beat sends ``distribution.gc_scheduled`` every minute; ``gc_scheduled``
starts a run (``gc_start``, so a worker carries it out) when the schedule
fires in that minute.  The minute is claimed with one conditional UPDATE on
the schedule's row, so two beats, or a late and an early tick, never start
two collections; a schedule changed now is used from the next minute on,
without restarting beat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import SYSTEM, Actor, audit_record
from jobs.cron import (
    SCHEDULE_KINDS,
    cron_next_run,
    schedule_claim,
    schedule_cron,
)

from ..exceptions import GCBusy, ScheduleInvalid
from ..models import GCRun, GCSchedule

logger = logging.getLogger(__name__)

SINGLETON = 1
KINDS = SCHEDULE_KINDS
SOURCE_SETTING, SOURCE_ADMIN = "setting", "admin"


@dataclass(frozen=True)
class Schedule:
    """The schedule in effect: Harbor's type, the cron, the run's parameters, where it is from."""

    kind: str
    cron: str
    untagged: bool
    grace: int | None  # None: HARBORPY_GC_GRACE
    source: str  # "setting" (HARBORPY_GC_SCHEDULE) or "admin" (set through the API or console)
    updated_at: datetime | None
    updated_by: str

    def next_run(self, now: datetime | None = None) -> datetime | None:
        """When it next fires, after ``now``; None when it never does."""
        return cron_next_run(self.cron, timezone.localtime(now or timezone.now()))


def gc_schedule_get() -> Schedule:
    """The schedule in effect: the admin's when one was set, else the settings'."""
    row = GCSchedule.objects.filter(pk=SINGLETON, set_at__isnull=False).first()
    if row is not None:
        return Schedule(
            kind=row.kind,
            cron=row.cron,
            untagged=row.untagged,
            grace=row.grace,
            source=SOURCE_ADMIN,
            updated_at=row.set_at,
            updated_by=row.set_by,
        )
    cron = settings.HARBORPY_GC_SCHEDULE
    return Schedule(
        kind="Custom" if cron else "None",
        cron=cron,
        untagged=settings.HARBORPY_GC_SCHEDULE_UNTAGGED,
        grace=None,
        source=SOURCE_SETTING,
        updated_at=None,
        updated_by="",
    )


def gc_schedule_set(
    *, kind: str, cron: str = "", untagged: bool = False, grace: int | None = None, actor: Actor
) -> Schedule:
    """Set the periodic collection (kind None: none), audited; ScheduleInvalid if unusable.

    Hourly, Daily and Weekly take their fixed cron unless one is given; Custom needs one.
    """
    try:
        cron = schedule_cron(kind, cron)
    except ValueError as error:
        raise ScheduleInvalid(str(error)) from None
    if grace is not None and grace < 0:
        raise ScheduleInvalid("parameters.grace: seconds, 0 or more")
    with transaction.atomic():
        GCSchedule.objects.update_or_create(
            pk=SINGLETON,
            defaults={
                "kind": kind,
                "cron": cron,
                "untagged": untagged,
                "grace": grace,
                "set_at": timezone.now(),
                "set_by": actor.name,
            },
        )
        audit_record(
            actor=actor,
            action="gc",
            resource="system:gc-schedule",
            detail={"type": kind, "cron": cron, "delete_untagged": untagged, "grace": grace},
        )
    return gc_schedule_get()


def gc_scheduled(*, now: datetime | None = None) -> GCRun | None:
    """Start a collection if the schedule fires in this minute and none was started in it.

    Returns the started (pending) run; None when not due, already claimed, or
    busy (a collection still pending or running: this minute is skipped).
    """
    from . import gc_start  # the package imports this module

    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    schedule = gc_schedule_get()
    if schedule.cron:
        GCSchedule.objects.get_or_create(pk=SINGLETON)  # a schedule from the settings has none
    rows = GCSchedule.objects.filter(pk=SINGLETON)
    if not schedule_claim(schedule.cron, rows, minute, "garbage-collection"):
        return None
    try:
        return gc_start(
            untagged=schedule.untagged, grace=schedule.grace, actor=SYSTEM, trigger="schedule"
        )
    except GCBusy as error:
        logger.warning("scheduled garbage collection skipped: %s", error)
        return None
