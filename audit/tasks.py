"""Celery tasks of the audit app: ids in, a service call, state on rows."""

from __future__ import annotations

from celery import shared_task

from .rotation import audit_purge_recover, audit_purge_run_execute
from .schedule import audit_purge_scheduled


@shared_task(name="audit.purge_run", ignore_result=True)
def run_audit_purge(run_id: int) -> None:
    """Carry out the recorded audit log purge ``run_id`` (idempotent: see the service)."""
    audit_purge_run_execute(run_id=run_id)


@shared_task(name="audit.purge_scheduled", ignore_result=True)
def run_scheduled_audit_purge() -> None:
    """Start an audit log purge if its schedule is due this minute (Celery beat, each minute);
    send a run whose message may be lost again."""
    audit_purge_recover()
    audit_purge_scheduled()
