"""The periodic audit log rotation, set by an admin (API, console) and stored in the database.

Celery beat sends ``audit.purge_scheduled`` every minute; ``audit_purge_scheduled``
starts a run (``audit_purge_start``, actor system, trigger schedule) when the
schedule fires in that minute.  The minute is claimed with one conditional
UPDATE on the schedule's row, so two beats never start two runs; a changed
schedule is used from the next minute on, without restarting beat.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from jobs.cron import (
    SCHEDULE_KINDS,
    cron_next_run,
    schedule_claim,
    schedule_cron,
)

from .exceptions import PurgeBusy, PurgeInvalid
from .models import AuditPurgeRun, AuditPurgeSchedule
from .rotation import SINGLETON, audit_purge_start, purge_operations, purge_retention
from .services import SYSTEM, Actor, audit_record

logger = logging.getLogger(__name__)

KINDS = SCHEDULE_KINDS


@dataclass(frozen=True)
class PurgeSchedule:
    """The schedule in effect: Harbor's type, the cron and the runs' parameters."""

    kind: str
    cron: str
    retention_hour: int | None
    operations: list[str]
    dry_run: bool
    updated_at: datetime | None
    updated_by: str

    def next_run(self, now: datetime | None = None) -> datetime | None:
        """When it next fires, after ``now``; None when it never does."""
        return cron_next_run(self.cron, timezone.localtime(now or timezone.now()))


def audit_purge_schedule_get() -> PurgeSchedule:
    """The schedule in effect (None until an admin sets one)."""
    row = AuditPurgeSchedule.objects.filter(pk=SINGLETON).first() or AuditPurgeSchedule()
    return PurgeSchedule(
        kind=row.kind,
        cron=row.cron,
        retention_hour=row.retention_hour,
        operations=list(row.operations),
        dry_run=row.dry_run,
        updated_at=row.set_at,
        updated_by=row.set_by,
    )


def audit_purge_schedule_set(
    *,
    kind: str,
    cron: str = "",
    retention_hour: int | None = None,
    operations: str | Iterable[str] = (),
    dry_run: bool = False,
    actor: Actor,
) -> PurgeSchedule:
    """Set the periodic rotation (kind None: none), audited; PurgeInvalid if unusable.

    Hourly, Daily and Weekly take their fixed cron unless one is given; Custom
    needs one; every kind but None needs the retention in hours.
    """
    try:
        cron = schedule_cron(kind, cron)
    except ValueError as error:
        raise PurgeInvalid(str(error)) from None
    names = purge_operations(operations)
    if kind != "None" or retention_hour is not None:
        retention_hour = purge_retention(retention_hour)
    with transaction.atomic():
        AuditPurgeSchedule.objects.update_or_create(
            pk=SINGLETON,
            defaults={
                "kind": kind,
                "cron": cron,
                "retention_hour": retention_hour,
                "operations": names,
                "dry_run": dry_run,
                "set_at": timezone.now(),
                "set_by": actor.name,
            },
        )
        audit_record(
            actor=actor,
            action="purge",
            resource="system:purgeaudit-schedule",
            detail={
                "type": kind,
                "cron": cron,
                "retention_hour": retention_hour,
                "operations": names,
                "dry_run": dry_run,
            },
        )
    return audit_purge_schedule_get()


def audit_purge_scheduled(*, now: datetime | None = None) -> AuditPurgeRun | None:
    """Start a rotation if the schedule fires in this minute and none was started in it.

    Returns the started (pending) run; None when not due, already claimed, or
    busy (a run still pending or running: this minute is skipped).
    """
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    schedule = audit_purge_schedule_get()
    rows = AuditPurgeSchedule.objects.filter(pk=SINGLETON)
    if not schedule_claim(schedule.cron, rows, minute, "audit purge"):
        return None
    try:
        return audit_purge_start(
            retention_hour=schedule.retention_hour,
            operations=schedule.operations,
            dry_run=schedule.dry_run,
            actor=SYSTEM,
            trigger="schedule",
        )
    except (PurgeBusy, PurgeInvalid) as error:
        logger.warning("scheduled audit purge skipped: %s", error)
        return None
