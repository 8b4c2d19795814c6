"""Online garbage collection: untagged manifests, unreferenced blobs, dead upload sessions.

``gc_run`` runs a collection now (the ``harborpy gc`` command);
``gc_enqueue`` records a pending run for a Celery worker, whose task calls
``gc_run_execute``.  Only one collection runs at a time (``gc_lock``); every
run is a ``GCRun`` row with its counters and log.  How pushes stay safe while
it runs is in docs/gc.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from audit.services import SYSTEM, Actor, audit_record
from jobs.recovery import JobKind, Recovered, job_send, job_stamp, jobs_fail_lost, jobs_recover
from projects.sizes import size_format

from ..blobstore import blob_store
from ..exceptions import GCBusy
from ..models import GCRun, GCStatus
from .blobs import (
    Freed,
    blob_reclaim,
    blobs_count,
    blobs_mark,
    blobs_resume,
    blobs_sweep,
    blobs_unmark,
)
from .lock import GCLocked, gc_lock, gc_lock_held, gc_start_lock
from .manifests import manifests_delete, manifests_untagged
from .schedule import gc_schedule_get, gc_schedule_set, gc_scheduled
from .uploads import orphans_delete, uploads_abandoned, uploads_delete, uploads_orphaned

__all__ = [
    "BATCH_SIZE",
    "GCLocked",
    "blob_reclaim",
    "gc_enqueue",
    "gc_lock",
    "gc_recover",
    "gc_run",
    "gc_run_create",
    "gc_run_execute",
    "gc_run_get",
    "gc_run_list",
    "gc_schedule_get",
    "gc_schedule_set",
    "gc_scheduled",
    "gc_start",
]

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]

BATCH_SIZE = 1000
"""Blobs per sweep transaction and per storage delete request (S3 deletes 1000 keys at once)."""

FINISHED = (GCStatus.SUCCEEDED, GCStatus.FAILED)

LOCK_WAIT = 10.0
"""Seconds a worker's run waits for the collectors' lock before leaving it to the checks."""


def gc_run_create(
    *,
    dry_run: bool = False,
    untagged: bool = False,
    grace: int | None = None,
    trigger: str = "manual",
) -> GCRun:
    """Record a pending run (grace defaults to HARBORPY_GC_GRACE)."""
    if grace is None:
        grace = settings.HARBORPY_GC_GRACE
    if grace < 0:
        raise ValueError("the grace window cannot be negative")
    return GCRun.objects.create(dry_run=dry_run, untagged=untagged, grace=grace, trigger=trigger)


def gc_enqueue(
    *,
    dry_run: bool = False,
    untagged: bool = False,
    grace: int | None = None,
    trigger: str = "manual",
) -> GCRun:
    """Record a pending run and hand it to a worker once the row is committed.

    With Redis (``REDIS_URL``) the worker is a Celery worker.  Without it (the
    embedded server) no worker consumes the queue, so the run is carried out
    by a thread of this process.
    """
    with transaction.atomic():
        run = gc_run_create(dry_run=dry_run, untagged=untagged, grace=grace, trigger=trigger)
        transaction.on_commit(lambda: job_send(GC_JOBS, run.pk))
    return run


def gc_start(
    *,
    dry_run: bool = False,
    untagged: bool = False,
    grace: int | None = None,
    actor: Actor = SYSTEM,
    trigger: str = "manual",
) -> GCRun:
    """Start a run now (the API, the console, the schedule): record it, hand it to a worker.

    Raises GCBusy when a run is pending or running.  A run left ``running`` by
    a collector that died (nobody holds the collectors' lock), or ``pending`` for
    longer than HARBORPY_JOB_LOST_SECONDS, is marked failed first, so it does not
    block new runs for ever.
    """
    try:
        with gc_start_lock():
            # A worker takes a run within seconds; one pending this long was lost (its
            # message, or the worker that received it): it must not block every later run.
            jobs_fail_lost(GC_JOBS)
            if GCRun.objects.filter(status=GCStatus.PENDING).exists():
                raise GCBusy("a garbage collection is waiting to run")
            if _collector_alive():
                raise GCBusy("a garbage collection is running")
            run = gc_enqueue(dry_run=dry_run, untagged=untagged, grace=grace, trigger=trigger)
            audit_record(
                actor=actor,
                action="gc",
                resource="system:gc",
                detail={
                    "run": run.pk,
                    "dry_run": dry_run,
                    "untagged": untagged,
                    "grace": run.grace,
                    "trigger": trigger,
                },
            )
            return run
    except GCLocked:
        raise GCBusy("a garbage collection is being started") from None


def gc_run_list() -> QuerySet[GCRun]:
    """Every run, newest first."""
    return GCRun.objects.order_by("-created_at", "-id")


def gc_run_get(*, run_id: int) -> GCRun | None:
    return GCRun.objects.filter(pk=run_id).first()


def _task() -> Any:
    from ..tasks import run_gc  # tasks imports this module

    return run_gc


def _refuse(run_id: int, reason: str) -> bool:
    """A pending run nobody will carry out would refuse every later start: fail it."""
    now = timezone.now()
    return bool(
        GCRun.objects.filter(pk=run_id, status=GCStatus.PENDING).update(
            status=GCStatus.FAILED,
            started_at=now,
            finished_at=now,
            log=Concat("log", Value(reason + "\n")),
        )
    )


def _collector_alive() -> bool:
    """Fail the runs marked running whose collector died (nobody holds the collectors'
    lock); true if a collector is alive.  Only the runs seen before the lock was probed
    are failed: a run started after the probe is alive."""
    running = list(GCRun.objects.filter(status=GCStatus.RUNNING).values_list("pk", flat=True))
    if not running:
        return False
    if gc_lock_held():
        return True
    GCRun.objects.filter(pk__in=running, status=GCStatus.RUNNING).update(
        status=GCStatus.FAILED,
        finished_at=timezone.now(),
        log=Concat("log", Value("interrupted\n")),
    )
    return False


# A run left running by a dead collector is failed, not counted as busy: it would hold
# every pending run of every kind back for ever.
GC_JOBS = JobKind(model=GCRun, name="gc", task=_task, refuse=_refuse, busy=_collector_alive)


def gc_recover(*, now: datetime | None = None) -> Recovered:
    """Send pending runs whose message may be lost again; fail those no worker took at all
    (the beat check, each minute: see jobs/recovery.py)."""
    return jobs_recover(GC_JOBS, now=now)


def gc_run(
    *,
    dry_run: bool = False,
    untagged: bool = False,
    grace: int | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> GCRun:
    """Collect garbage now, in this process; return the finished run (succeeded or failed).

    Raises GCLocked, recording nothing, when another collection is running.
    """
    with gc_lock():
        run = gc_run_create(dry_run=dry_run, untagged=untagged, grace=grace)
        _execute(run, progress=progress, batch_size=batch_size)
    return run


def gc_run_execute(
    *,
    run_id: int,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    wait: float = LOCK_WAIT,
) -> GCRun | None:
    """Carry out a recorded run; idempotent (the body of the ``distribution.gc_run`` task).

    A finished run is left as it is.  A run marked running whose collector
    died is run again (collecting twice is harmless).  While the lock is held
    elsewhere (a push finishing a blob's deletion holds it for a moment, a
    duplicate delivery of this run or ``harborpy gc`` for a whole collection),
    it is tried again for ``wait`` seconds; then a running run is left to the
    collector that holds it, and a pending one stays pending, noted, for the
    per-minute check to send again once the workers are free.
    """
    run = GCRun.objects.filter(pk=run_id).first()
    deadline = time.monotonic() + wait
    while run is not None and run.status not in FINISHED:
        try:
            with gc_lock():
                run.refresh_from_db()
                if run.status not in FINISHED:
                    _execute(run, progress=progress, batch_size=batch_size)
            break
        except GCLocked:
            run.refresh_from_db()
            if run.status != GCStatus.PENDING:
                break  # claimed by the collector that holds the lock
            if time.monotonic() >= deadline:
                waiting = "waiting: another garbage collection holds the lock"
                line = f"{job_stamp(timezone.now())}: {waiting}\n"
                GCRun.objects.filter(pk=run_id, status=GCStatus.PENDING).update(
                    log=Concat("log", Value(line))
                )
                run.refresh_from_db()
                break
            time.sleep(0.5)
    return run


class _Report:
    """Progress lines for the caller (every batch) and the run's log and counters (each phase)."""

    def __init__(self, run: GCRun, progress: Progress | None) -> None:
        self.run = run
        self.progress = progress
        self.blobs = Freed()  # blobs deleted so far
        self.upload_bytes = 0

    def step(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def sync(self) -> None:
        """Put what was deleted so far into the run's counters (a dry run sets them itself)."""
        if not self.run.dry_run:
            self.run.blobs_deleted = self.blobs.count
            self.run.bytes_freed = self.blobs.bytes + self.upload_bytes

    def note(self, line: str) -> None:
        """Log a phase's result and save the counters so far."""
        self.step(line)
        self.sync()
        self.run.log += line + "\n"
        self.run.save(update_fields=_COUNTERS)


_COUNTERS = [
    "status",
    "started_at",
    "finished_at",
    "blobs_deleted",
    "bytes_freed",
    "manifests_deleted",
    "uploads_deleted",
    "log",
]


def _execute(run: GCRun, *, progress: Progress | None, batch_size: int) -> None:
    """Run the phases of ``run`` (the caller holds the lock); record the outcome on the row."""
    now = timezone.now()
    # Holding the lock, no other run is alive: one still marked running was interrupted.
    GCRun.objects.filter(status=GCStatus.RUNNING).exclude(pk=run.pk).update(
        status=GCStatus.FAILED, finished_at=now, log=Concat("log", Value("interrupted\n"))
    )
    # A pending run keeps its log (lines saying it was sent again); one interrupted starts anew.
    log = run.log if run.status == GCStatus.PENDING else ""
    run.status, run.started_at, run.finished_at, run.log = GCStatus.RUNNING, now, None, log
    run.blobs_deleted = run.bytes_freed = run.manifests_deleted = run.uploads_deleted = 0
    report = _Report(run, progress)
    mode = "dry run" if run.dry_run else "run"
    report.note(
        f"gc {mode} {run.pk}: grace {run.grace} s"
        + (", untagged manifests too" if run.untagged else "")
    )
    try:
        if run.dry_run:
            _dry_run(run, report, now, batch_size)
        else:
            _collect(run, report, now, batch_size)
        run.status = GCStatus.SUCCEEDED
    except Exception as error:
        logger.exception("garbage collection %s failed", run.pk)
        run.status = GCStatus.FAILED
        report.note(f"failed: {type(error).__name__}: {error}")
    finally:
        if not run.dry_run:
            try:
                blobs_unmark(batch_size=batch_size)
            except Exception:
                logger.exception("could not unmark the blobs of garbage collection %s", run.pk)
        run.finished_at = timezone.now()
        report.sync()
        report.note(_summary(run))


def _collect(run: GCRun, report: _Report, now: datetime, batch_size: int) -> None:
    store, freed = blob_store(), report.blobs
    cutoff = now - timedelta(seconds=run.grace)
    blobs_resume(store=store, batch_size=batch_size, step=report.step, freed=freed)
    if run.untagged:
        for doomed in manifests_untagged(cutoff=cutoff):
            run.manifests_deleted += manifests_delete(doomed=doomed, cutoff=cutoff, run_id=run.pk)
            report.step(f"untagged: {run.manifests_deleted} manifests deleted")
        report.note(f"untagged: {run.manifests_deleted} manifests deleted")
    marked = blobs_mark(cutoff=cutoff, batch_size=batch_size, step=report.step)
    report.note(f"mark: {marked} blobs marked")
    blobs_sweep(cutoff=cutoff, store=store, batch_size=batch_size, step=report.step, freed=freed)
    report.note(f"sweep: {freed.count} blobs deleted")
    count, size = uploads_delete(now=now, store=store, step=report.step)
    run.uploads_deleted, report.upload_bytes = count, size
    orphans = orphans_delete(
        orphans=uploads_orphaned(store=store, cutoff=cutoff), store=store, step=report.step
    )
    run.uploads_deleted += orphans
    report.note(f"uploads: {count} abandoned sessions and {orphans} orphaned data deleted")


def _dry_run(run: GCRun, report: _Report, now: datetime, batch_size: int) -> None:
    """Count what ``_collect`` would delete, reading only."""
    store = blob_store()
    cutoff = now - timedelta(seconds=run.grace)
    ignored: set[int] = set()
    if run.untagged:
        for doomed in manifests_untagged(cutoff=cutoff):
            ignored |= doomed.ids
        run.manifests_deleted = len(ignored)
        report.note(f"untagged: {len(ignored)} manifests would be deleted")
    would = blobs_count(
        cutoff=cutoff, ignored_manifests=ignored, batch_size=batch_size, step=report.step
    )
    report.note(f"blobs: {would.count} would be deleted")
    abandoned = list(uploads_abandoned(now=now).values_list("size", flat=True))
    orphans = uploads_orphaned(store=store, cutoff=cutoff)
    run.blobs_deleted = would.count
    run.bytes_freed = would.bytes + sum(abandoned)
    run.uploads_deleted = len(abandoned) + len(orphans)
    report.note(
        f"uploads: {len(abandoned)} abandoned sessions and {len(orphans)} orphaned data "
        "would be deleted"
    )


def _summary(run: GCRun) -> str:
    counts = (
        f"{run.blobs_deleted} blobs, {run.manifests_deleted} manifests, "
        f"{run.uploads_deleted} uploads"
    )
    size = size_format(run.bytes_freed)
    if run.dry_run:
        return f"would free {size}: {counts}"
    if run.status == GCStatus.FAILED:
        return f"failed after freeing {size}: {counts}"
    return f"freed {size}: {counts}"
