"""Handing a recorded run (a GCRun, a RetentionRun, an AuditPurgeRun, an Execution) to a worker.

Every run is a row first; once that row is committed, its id goes to a Celery
task.  The queue is Redis when ``REDIS_URL`` is set (workers are services of
their own), otherwise the filesystem queue in the data folder, which the
worker that ``harborpy serve`` starts beside the embedded server reads.  The
message is sent without retries: whoever started the run (a request, a push,
a schedule) must not wait for a broker.  A run the broker would not take is
marked failed through ``refuse``, since a pending run nobody carries out
would wait for ever (and a pending GC would refuse every later start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def job_dispatch(
    *, task: Callable[[], Any], run_id: int, refuse: Callable[[int, str], Any], name: str
) -> None:
    """Send ``run_id`` to the Celery task ``task()`` returns (tasks import the services, so
    callers import them late); ``refuse(run_id, reason)`` if the broker will not take it.
    ``name`` names the run in the log (``gc-12``)."""
    try:
        task().apply_async((run_id,), retry=False)
    except Exception as error:
        logger.exception("%s could not be handed to a worker", name)
        refuse(run_id, f"could not hand the run to a worker: {type(error).__name__}: {error}")
