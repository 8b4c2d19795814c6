"""Celery tasks of replication: ids in, a service call, state on rows."""

from __future__ import annotations

from celery import shared_task

from .services import execution_run


@shared_task(name="replication.run_execution", ignore_result=True)
def run_execution(execution_id: int) -> None:
    """Carry out the recorded execution ``execution_id`` (idempotent: see execution_run)."""
    execution_run(execution_id=execution_id)
