"""Cron expressions, as Celery crontabs: the GC, audit rotation and retention schedules."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery.schedules import crontab

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
