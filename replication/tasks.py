"""Celery tasks of replication: ids in, a service call, state on rows."""

from __future__ import annotations

import logging

from celery import shared_task

from .models import Execution
from .services import (
    execution_run,
    executions_fail_stalled,
    executions_recover,
    replication_scheduled,
)

logger = logging.getLogger(__name__)


@shared_task(name="replication.run_execution", ignore_result=True)
def run_execution(execution_id: int) -> None:
    """Carry out the recorded execution ``execution_id`` (idempotent: see execution_run)."""
    if not Execution.objects.filter(pk=execution_id).exists():
        logger.warning("replication execution %s is gone; nothing to run", execution_id)
        return
    execution_run(execution_id=execution_id)


@shared_task(name="replication.scheduled", ignore_result=True)
def run_scheduled() -> None:
    """Each minute (Celery beat): fail stalled executions, send again (or fail as lost) those
    no worker took, start scheduled policies due now."""
    executions_fail_stalled()
    executions_recover()
    replication_scheduled()
