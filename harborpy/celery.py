"""The Celery application: Redis broker in production, a filesystem queue when embedded.

Celery beat runs the schedules the settings name (``HARBORPY_GC_SCHEDULE``),
read when the app is configured, not at import, and once a minute looks for
retention policies whose own schedule is due (``HARBORPY_RETENTION_SCHEDULER``)
and for replication policies due and executions stalled (``HARBORPY_REPLICATION_SCHEDULER``).
"""

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab

from distribution.cron import cron_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harborpy.settings")

app = Celery("harborpy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule(settings: Any) -> dict[str, dict[str, Any]]:
    """The periodic tasks the settings ask for."""
    schedule: dict[str, dict[str, Any]] = {}
    if settings.HARBORPY_GC_SCHEDULE:
        schedule["garbage-collection"] = {
            "task": "distribution.gc_scheduled",
            "schedule": cron_schedule(settings.HARBORPY_GC_SCHEDULE),
        }
    if settings.HARBORPY_RETENTION_SCHEDULER:
        schedule["tag-retention"] = {
            "task": "distribution.retention_scheduled",
            "schedule": crontab(),  # every minute: each policy's cron is checked in the task
        }
    if settings.HARBORPY_REPLICATION_SCHEDULER:
        schedule["replication"] = {
            "task": "replication.scheduled",
            "schedule": crontab(),  # every minute: scheduled policies, stalled executions
        }
    return schedule


__all__ = ["app", "beat_schedule", "cron_schedule"]


@app.on_after_configure.connect
def _add_schedules(sender: Celery, **kwargs: Any) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {**(sender.conf.beat_schedule or {}), **beat_schedule(settings)}
