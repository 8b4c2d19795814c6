"""The Celery application: Redis broker in production, a filesystem queue when embedded.

Celery beat runs the schedules the settings name (``HARBORPY_GC_SCHEDULE``),
read when the app is configured, not at import.
"""

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harborpy.settings")

app = Celery("harborpy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def cron_schedule(expression: str) -> crontab:
    """A Celery crontab from a cron expression: "minute hour day month weekday" or an @alias.

    Harbor's six-field form (seconds first) is accepted when the seconds are 0.
    Raises ValueError for anything else.
    """
    fields = _ALIASES.get(expression.strip().lower(), expression).split()
    if len(fields) == 6 and fields[0] == "0":
        fields = fields[1:]
    if len(fields) != 5:
        raise ValueError(f"{expression!r} is not a cron expression of five fields")
    minute, hour, day, month, weekday = fields
    return crontab(
        minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday
    )


def beat_schedule(settings: Any) -> dict[str, dict[str, Any]]:
    """The periodic tasks the settings ask for."""
    schedule: dict[str, dict[str, Any]] = {}
    if settings.HARBORPY_GC_SCHEDULE:
        schedule["garbage-collection"] = {
            "task": "distribution.gc_scheduled",
            "schedule": cron_schedule(settings.HARBORPY_GC_SCHEDULE),
        }
    return schedule


@app.on_after_configure.connect
def _add_schedules(sender: Celery, **kwargs: Any) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {**(sender.conf.beat_schedule or {}), **beat_schedule(settings)}
