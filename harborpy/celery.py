"""The Celery application: Redis broker in production, a filesystem queue when embedded.

Celery beat sends, once a minute, a checker of the garbage-collection schedule
(the admin's, else ``HARBORPY_GC_SCHEDULE``: read from the database each time,
so a change needs no restart) and one of the audit log rotation's (the
admin's, from the database too); with ``HARBORPY_RETENTION_SCHEDULER``, one of
the retention policies whose own schedule is due; and, with
``HARBORPY_REPLICATION_SCHEDULER``, one that starts the replication policies
due and fails stalled executions.  Each of the three also sends again the runs
of its kind that stay pending (their message may be lost), and fails those no
worker took at all (jobs/recovery.py).  The settings are read when
the app is configured, not at import.
"""

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab

from jobs.cron import cron_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harborpy.settings")

app = Celery("harborpy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule(settings: Any) -> dict[str, dict[str, Any]]:
    """The periodic tasks the settings ask for."""
    schedule: dict[str, dict[str, Any]] = {}
    schedule["garbage-collection"] = {
        "task": "distribution.gc_scheduled",
        "schedule": crontab(),  # every minute: pending runs, the schedule in effect
    }
    schedule["audit-log-rotation"] = {
        "task": "audit.purge_scheduled",
        "schedule": crontab(),  # every minute: the admin's schedule is checked in the task
    }
    if settings.HARBORPY_RETENTION_SCHEDULER:
        schedule["tag-retention"] = {
            "task": "distribution.retention_scheduled",
            "schedule": crontab(),  # every minute: pending runs, each policy's cron
        }
    if settings.HARBORPY_REPLICATION_SCHEDULER:
        schedule["replication"] = {
            "task": "replication.scheduled",
            "schedule": crontab(),  # every minute: scheduled, stalled and pending executions
        }
    return schedule


__all__ = ["app", "beat_schedule", "cron_schedule"]


@app.on_after_configure.connect
def _add_schedules(sender: Celery, **kwargs: Any) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {**(sender.conf.beat_schedule or {}), **beat_schedule(settings)}
