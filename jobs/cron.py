"""Cron expressions, as Celery crontabs: the GC, audit rotation and retention schedules."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery.schedules import crontab
from django.db.models import Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)

# Harbor's schedule types; the fixed ones have their cron (Harbor's six fields, seconds first).
SCHEDULE_KINDS: dict[str, str] = {
    "None": "",
    "Hourly": "0 0 * * * *",
    "Daily": "0 0 0 * * *",
    "Weekly": "0 0 0 * * 0",
    "Custom": "",
}

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


def cron_fires(schedule: crontab, moment: datetime) -> bool:
    """Whether ``schedule`` fires in the minute of ``moment`` (all five fields must match)."""
    return (
        moment.minute in schedule.minute
        and moment.hour in schedule.hour
        and moment.day in schedule.day_of_month
        and moment.month in schedule.month_of_year
        and moment.isoweekday() % 7 in schedule.day_of_week
    )


def cron_next(schedule: crontab, after: datetime, *, days: int = 366 * 5) -> datetime | None:
    """The first minute after ``after`` (aware) in which ``schedule`` fires, in its timezone.

    None when it fires in none of the next ``days`` days (``0 0 31 2 *``).
    """
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for offset in range(days):
        day = (start + timedelta(days=offset)).date()
        if not (
            day.day in schedule.day_of_month
            and day.month in schedule.month_of_year
            and day.isoweekday() % 7 in schedule.day_of_week
        ):
            continue
        for hour in sorted(schedule.hour):
            for minute in sorted(schedule.minute):
                moment = start.replace(
                    year=day.year, month=day.month, day=day.day, hour=hour, minute=minute
                )
                if moment >= start:
                    return moment
    return None


def schedule_cron(kind: str, cron: str = "") -> str:
    """The cron expression of a schedule of Harbor's ``kind`` ("" for None), checked.

    Hourly, Daily and Weekly take their fixed cron unless one is given; Custom needs
    one.  Raises ValueError with a message naming the field for anything unusable.
    """
    if kind not in SCHEDULE_KINDS:
        raise ValueError(
            f"schedule.type {kind!r}: one of {', '.join(SCHEDULE_KINDS)}"
            + ("; to start a run now, POST a Manual schedule" if kind == "Manual" else "")
        )
    cron = "" if kind == "None" else (cron.strip() or SCHEDULE_KINDS[kind])
    if kind == "Custom" and not cron:
        raise ValueError("schedule.cron: a Custom schedule needs a cron expression")
    if cron:
        try:
            cron_schedule(cron)
        except ValueError as error:
            raise ValueError(
                f"schedule.cron: {error}; use minute hour day month weekday"
                " (or Harbor's six fields with seconds 0)"
            ) from None
    return cron


def cron_next_run(expression: str, after: datetime) -> datetime | None:
    """When ``expression`` next fires after ``after`` (aware); None when it never does or
    is no cron expression (an empty one: no schedule)."""
    if not expression:
        return None
    try:
        schedule = cron_schedule(expression)
    except ValueError:
        return None
    return cron_next(schedule, after)


def schedule_claim(expression: str, rows: QuerySet[Any], minute: datetime, what: str) -> bool:
    """Whether the singleton schedule ``rows`` (cron ``expression``, "" for none) fires in
    ``minute`` and this caller claimed that minute (``minute_claim``).  ``what`` names the
    schedule in the log when its expression is unusable."""
    if not expression:
        return False
    try:
        due = cron_fires(cron_schedule(expression), timezone.localtime(minute))
    except ValueError:
        logger.error("the %s schedule %r is not a cron expression", what, expression)
        return False
    return due and minute_claim(rows, minute)


def minute_claim(rows: QuerySet[Any], minute: datetime) -> bool:
    """Claim ``minute`` for the scheduled row(s) ``rows`` (field ``scheduled_at``) with one
    conditional UPDATE: true for the one caller that moved it, so two beats, or a late and
    an early tick, start a scheduled run once."""
    return bool(
        rows.filter(Q(scheduled_at__isnull=True) | Q(scheduled_at__lt=minute)).update(
            scheduled_at=minute
        )
    )
