"""Celery tasks of the distribution app: ids in, a service call, state on rows."""

from __future__ import annotations

from celery import shared_task

from .gc import gc_recover, gc_run_execute
from .gc.schedule import gc_scheduled
from .retention import retention_recover, retention_run_execute, retention_scheduled


@shared_task(name="distribution.gc_run", ignore_result=True)
def run_gc(run_id: int) -> None:
    """Carry out the recorded garbage collection ``run_id`` (idempotent: see gc_run_execute)."""
    gc_run_execute(run_id=run_id)


@shared_task(name="distribution.gc_scheduled", ignore_result=True)
def run_scheduled_gc() -> None:
    """Each minute (Celery beat): send again (or fail as lost) pending runs no worker took,
    then start a garbage collection if its schedule is due this minute."""
    gc_recover()
    gc_scheduled()


@shared_task(name="distribution.retention_run", ignore_result=True)
def run_retention(run_id: int) -> None:
    """Carry out the recorded retention run ``run_id`` (idempotent: see retention_run_execute)."""
    retention_run_execute(run_id=run_id)


@shared_task(name="distribution.retention_scheduled", ignore_result=True)
def run_scheduled_retention() -> None:
    """Each minute (Celery beat): send again (or fail as lost) pending runs no worker took,
    then start the retention policies whose schedule is due this minute."""
    retention_recover()
    retention_scheduled()
