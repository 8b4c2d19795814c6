"""Audit log rotation (Harbor's "Clean Up > Log Rotation"): purge runs, one at a time.

``audit_purge_start`` records a pending ``AuditPurgeRun`` and, once it is
committed, hands its id to the Celery task ``audit.purge_run``, whose body
``audit_purge_run_execute`` claims the run (pending to running, one
conditional UPDATE: a message delivered twice is a no-op) and purges in
batches (``audit.purge``).  ``audit_purge_run`` does the same in this process
(``harborpy audit purge``).  Starting is serialized on the schedule's row; a
run pending past ``HARBORPY_JOB_LOST_SECONDS`` (its message lost: the beat check
sends it again before that, jobs/recovery.py) or running without a heartbeat for
15 minutes (its worker died) is failed first, so it does not block the next.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from jobs.recovery import JobKind, Recovered, job_send, jobs_fail_lost, jobs_recover

from .exceptions import PurgeBusy, PurgeInvalid
from .models import ACTIONS, AuditEntry, AuditPurgeRun, AuditPurgeSchedule, PurgeStatus
from .purge import BATCH_SIZE, audit_purge_batch, audit_purge_count
from .services import SYSTEM, Actor, audit_record

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]

SINGLETON = 1  # the schedule's row, also what starts lock
MAX_RETENTION_HOUR = 876_000  # a hundred years
STALL_AFTER = timedelta(minutes=15)
ACTIVE = (PurgeStatus.PENDING, PurgeStatus.RUNNING)
START_RESOURCE = "system:purgeaudit"  # the entry recording who started a run
_ACTION_NAME = re.compile(r"^[a-z_-]{1,32}$")


def purge_operations(value: str | Iterable[str]) -> list[str]:
    """The actions a purge is limited to, from ``"push,pull"`` or a list; [] means all.

    Raises PurgeInvalid for an action harborpy does not record (nor the log holds).
    """
    names = value.split(",") if isinstance(value, str) else list(value)
    operations = sorted({name.strip().lower() for name in names if name.strip()})
    unknown = [name for name in operations if name not in ACTIONS]
    if unknown and all(_ACTION_NAME.match(name) for name in unknown):
        logged = set(AuditEntry.objects.filter(action__in=unknown).values_list("action", flat=True))
        unknown = [name for name in unknown if name not in logged]
    if unknown:
        raise PurgeInvalid(
            f"include_operations: unknown {', '.join(map(repr, unknown))}; "
            f"one or more of {', '.join(ACTIONS)}"
        )
    return operations


def purge_retention(hours: int | None) -> int:
    """Check a retention period in hours (0 or more); PurgeInvalid if unusable."""
    if hours is None:
        raise PurgeInvalid("audit_retention_hour: required, the hours of entries to keep")
    if isinstance(hours, bool) or not isinstance(hours, int):
        raise PurgeInvalid("audit_retention_hour: a whole number of hours")
    if not 0 <= hours <= MAX_RETENTION_HOUR:
        raise PurgeInvalid(f"audit_retention_hour: 0 to {MAX_RETENTION_HOUR} hours, not {hours}")
    return hours


def audit_purge_start(
    *,
    retention_hour: int | None,
    operations: str | Iterable[str] = (),
    dry_run: bool = False,
    actor: Actor = SYSTEM,
    trigger: str = "manual",
) -> AuditPurgeRun:
    """Start a purge now (the API, the console, the schedule): record it, hand it to a worker.

    Raises PurgeInvalid for bad parameters and PurgeBusy while a run is active.
    """
    with transaction.atomic():
        run = _run_create(
            retention_hour=retention_hour,
            operations=operations,
            dry_run=dry_run,
            actor=actor,
            trigger=trigger,
            status=PurgeStatus.PENDING,
        )
        transaction.on_commit(lambda: job_send(PURGE_JOBS, run.pk))
    return run


def audit_purge_run(
    *,
    retention_hour: int | None,
    operations: str | Iterable[str] = (),
    dry_run: bool = False,
    actor: Actor = SYSTEM,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> AuditPurgeRun:
    """Purge now, in this process (``harborpy audit purge``); return the finished run.

    Recorded like a worker's run; PurgeInvalid and PurgeBusy as for audit_purge_start.
    """
    with transaction.atomic():
        run = _run_create(
            retention_hour=retention_hour,
            operations=operations,
            dry_run=dry_run,
            actor=actor,
            trigger="manual",
            status=PurgeStatus.RUNNING,
        )
    _execute(run, progress=progress, batch_size=batch_size)
    return run


def audit_purge_run_execute(
    *, run_id: int, progress: Progress | None = None, batch_size: int = BATCH_SIZE
) -> AuditPurgeRun | None:
    """Carry out a recorded pending run (the ``audit.purge_run`` task); idempotent.

    Claimed from pending to running by one conditional UPDATE: a run delivered
    twice, or already finished, is left alone.  A failure is recorded on the run.
    """
    now = timezone.now()
    claimed = AuditPurgeRun.objects.filter(pk=run_id, status=PurgeStatus.PENDING).update(
        status=PurgeStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    run = AuditPurgeRun.objects.filter(pk=run_id).first()
    if claimed and run is not None:
        _execute(run, progress=progress, batch_size=batch_size)
    return run


def _run_create(
    *,
    retention_hour: int | None,
    operations: str | Iterable[str],
    dry_run: bool,
    actor: Actor,
    trigger: str,
    status: str,
) -> AuditPurgeRun:
    """Check, refuse if busy, record and audit a run; in the caller's transaction."""
    hours = purge_retention(retention_hour)
    names = purge_operations(operations)
    AuditPurgeSchedule.objects.get_or_create(pk=SINGLETON)
    # Starts wait for each other here: the check for an active run and the new row are one step.
    AuditPurgeSchedule.objects.select_for_update().get(pk=SINGLETON)
    _fail_lost()
    if AuditPurgeRun.objects.filter(status__in=ACTIVE).exists():
        raise PurgeBusy("an audit log purge is pending or running")
    now = timezone.now()
    run = AuditPurgeRun.objects.create(
        retention_hour=hours,
        operations=names,
        dry_run=dry_run,
        trigger=trigger,
        status=status,
        started_at=now if status == PurgeStatus.RUNNING else None,
        heartbeat_at=now if status == PurgeStatus.RUNNING else None,
        actor=actor.name,
        actor_source=actor.source,
    )
    audit_record(
        actor=actor,
        action="purge",
        resource=START_RESOURCE,
        detail={
            "run": run.pk,
            "dry_run": dry_run,
            "retention_hour": hours,
            "operations": names,
            "trigger": trigger,
        },
    )
    return run


def _fail_lost() -> None:
    """Fail runs that no longer run: pending past the lost bound, running without a
    heartbeat."""
    jobs_fail_lost(PURGE_JOBS)
    now = timezone.now()
    AuditPurgeRun.objects.filter(status=PurgeStatus.RUNNING).filter(
        Q(heartbeat_at__lt=now - STALL_AFTER) | Q(heartbeat_at__isnull=True)
    ).update(
        status=PurgeStatus.FAILED,
        finished_at=now,
        log=Concat("log", Value("stalled: its worker went silent\n")),
    )


def _task() -> Any:
    from .tasks import run_audit_purge  # tasks imports this module

    return run_audit_purge


def _refuse(run_id: int, reason: str) -> bool:
    """A pending run nobody will carry out would refuse every later start: fail it."""
    now = timezone.now()
    return bool(
        AuditPurgeRun.objects.filter(pk=run_id, status=PurgeStatus.PENDING).update(
            status=PurgeStatus.FAILED,
            started_at=now,
            finished_at=now,
            log=Concat("log", Value(reason + "\n")),
        )
    )


PURGE_JOBS = JobKind(model=AuditPurgeRun, name="audit-purge", task=_task, refuse=_refuse)


def audit_purge_recover(*, now: datetime | None = None) -> Recovered:
    """Send pending runs whose message may be lost again; fail those no worker took at all
    (the beat check, each minute: see jobs/recovery.py)."""
    return jobs_recover(PURGE_JOBS, now=now)


def _execute(run: AuditPurgeRun, *, progress: Progress | None, batch_size: int) -> None:
    """Purge (or count) in batches; the counters, heartbeat and log saved after each."""
    run.cutoff = timezone.now() - timedelta(hours=run.retention_hour)
    scope = ", ".join(run.operations) if run.operations else "every action"
    mode = "dry run" if run.dry_run else "run"
    earlier = run.log  # notes from before the start ("sent to a worker again") stay on top
    lines: list[str] = []

    def note(line: str) -> None:
        lines.append(line)
        if progress is not None:
            progress(line)
        run.log = earlier + "\n".join(lines) + "\n"
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["cutoff", "deleted", "log", "heartbeat_at"])

    note(f"audit purge {mode} {run.pk}: entries before {run.cutoff:%Y-%m-%d %H:%M:%S %Z}, {scope}")
    actor = Actor(run.actor, run.actor_source)
    try:
        if run.dry_run:
            run.deleted = audit_purge_count(cutoff=run.cutoff, operations=run.operations)
            note(f"would delete {run.deleted} entries")
        else:
            after_id = 0
            while batch := audit_purge_batch(
                cutoff=run.cutoff,
                operations=run.operations,
                actor=actor,
                run_id=run.pk,
                after_id=after_id,
                batch_size=batch_size,
            ):
                run.deleted += batch.deleted
                after_id = batch.last_id
                note(f"batch: {batch.deleted} entries deleted, {run.deleted} so far")
            note(f"deleted {run.deleted} entries")
        status = PurgeStatus.SUCCEEDED
    except Exception as error:
        logger.exception("audit purge %s failed", run.pk)
        note(f"failed after deleting {run.deleted} entries: {type(error).__name__}: {error}")
        status = PurgeStatus.FAILED
    # A run failed meanwhile as stalled keeps that status: its record says why.
    AuditPurgeRun.objects.filter(pk=run.pk, status=PurgeStatus.RUNNING).update(
        status=status, finished_at=timezone.now()
    )
    run.refresh_from_db()
