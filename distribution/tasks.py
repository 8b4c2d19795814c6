"""Celery tasks of the distribution app: ids in, a service call, state on rows."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .gc import gc_run_create, gc_run_execute
from .retention import retention_scheduled


@shared_task(name="distribution.gc_run", ignore_result=True)
def run_gc(run_id: int) -> None:
    """Carry out the recorded garbage collection ``run_id`` (idempotent: see gc_run_execute)."""
    gc_run_execute(run_id=run_id)


@shared_task(name="distribution.gc_scheduled", ignore_result=True)
def run_scheduled_gc() -> None:
    """Record and carry out a garbage collection for HARBORPY_GC_SCHEDULE (Celery beat)."""
    run = gc_run_create(untagged=settings.HARBORPY_GC_SCHEDULE_UNTAGGED)
    gc_run_execute(run_id=run.pk)


@shared_task(name="distribution.retention_scheduled", ignore_result=True)
def run_scheduled_retention() -> None:
    """Run the retention policies whose schedule is due this minute (Celery beat, each minute)."""
    retention_scheduled()
