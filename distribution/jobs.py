"""Handing a recorded run (a GCRun, a RetentionRun) to a worker once its row is committed.

With Redis (``REDIS_URL``) the worker is a Celery worker: the task gets the
run's id.  Without it (the embedded server) no worker consumes the queue, so
the run is carried out by a thread of this process, which closes its own
database connection when done.  Either way the run's state is on its row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


def job_dispatch(
    *,
    task: Callable[[], Any],
    run_id: int,
    execute: Callable[[int], Any],
    refuse: Callable[[int, str], Any],
    name: str,
) -> None:
    """Send ``run_id`` to the Celery task ``task()`` returns, or run ``execute(run_id)`` here.

    ``task`` is called only with Redis (tasks import the services, so callers
    import them late); when sending fails, ``refuse(run_id, reason)`` marks the
    run failed, as a pending run nobody carries out would wait for ever.
    ``name`` names the thread (``gc-12``).
    """
    if settings.REDIS_URL:
        try:
            task().delay(run_id)
        except Exception as error:
            refuse(run_id, f"could not hand the run to a worker: {type(error).__name__}: {error}")
            raise
        return
    thread = threading.Thread(
        target=_run_here, args=(execute, run_id, name), name=name, daemon=True
    )
    thread.start()


def _run_here(execute: Callable[[int], Any], run_id: int, name: str) -> None:
    """The in-process worker of the embedded server: one run, then its own connection closed."""
    try:
        execute(run_id)
    except Exception:
        logger.exception("%s could not run", name)
    finally:
        connections.close_all()
