"""Runs whose message never reached a worker: sent again, then given up on as lost.

``job_dispatch`` (jobs.py) sends a run's id once, without retries.  A message the
broker accepted can still be lost (a broker restarted without persistence, a worker
killed after receiving it and before claiming the run, the embedded filesystem
queue wiped), and its run would stay ``pending`` with nobody to carry it out.  Each
kind of run (GCRun, RetentionRun, replication's Execution) describes itself with a
``JobKind``; its runs are sent with ``job_send``, which records when
(``dispatched_at``) and how often (``dispatches``), and the kind's per-minute beat
check calls ``jobs_recover``:

- a run still pending ``HARBORPY_JOB_RESEND_SECONDS`` after it was created or last
  sent is sent again with the same task, and its log says so.  The resend is claimed
  by one conditional UPDATE of ``dispatched_at``, so two beats at once send it once;
- a run still pending ``HARBORPY_JOB_LOST_SECONDS`` after it was created is failed
  through the kind's ``refuse`` ("lost: no worker took it within ...").  A broker
  refusing a resend is noted in the log; the run waits for the next interval.

A pending run may also be waiting its turn: the workers are busy with other runs (a
long replication, a collection) and its message is queued behind theirs.  So while
any run of any kind is running (``jobs_busy``), the checks neither send nor fail
pending runs; they stamp them ``held_at`` instead, and both clocks above start again
from the last such stamp.  A run is thus failed as lost only after the workers were
free for the whole bound and it was sent to them again meanwhile.

A run sent twice runs once: the worker claims it from pending to running with one
conditional UPDATE, and the other delivery finds it claimed.  The checks run only
where beat runs (with a worker); ``gc_start`` also fails lost GC runs itself, since a
pending GC refuses every later start.

Every kind registers itself when its ``JobKind`` is made; the modules that make them
are imported when the project's apps are ready (harborpy/apps.py), so every process
that checks knows every kind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from .dispatch import job_dispatch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    """How to find, send and fail the runs of one kind.

    The model has ``status``, ``dispatched_at``, ``held_at`` (both null) and
    ``dispatches`` fields, the field named by ``created`` (when the run was recorded)
    and the text field named by ``note`` (its log), which the resend lines are appended
    to.  ``busy`` says whether a worker is carrying out a run of the kind now; by
    default, whether one is ``running`` (kinds whose dead runs stay running until a
    later check finds them out say more).
    """

    model: type[models.Model]
    name: str  # runs are named <name>-<id> in the log
    task: Callable[[], Any]  # returns the Celery task (tasks import the services: called late)
    # Fails a run if still pending, the reason appended to its log; true if it did.
    refuse: Callable[[int, str], bool]
    created: str = "created_at"
    note: str = "log"
    pending: str = "pending"
    running: str = "running"
    busy: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        _KINDS[self.name] = self

    def runs(self) -> models.QuerySet[Any]:
        return self.model._default_manager.filter(status=self.pending)

    def working(self) -> bool:
        if self.busy is not None:
            return self.busy()
        return self.model._default_manager.filter(status=self.running).exists()


_KINDS: dict[str, JobKind] = {}


def jobs_busy() -> bool:
    """Whether a worker is carrying out a run of any kind: pending runs may be queued
    behind it, so none of them is sent again or failed as lost now."""
    return any(kind.working() for kind in _KINDS.values())


@dataclass
class Recovered:
    """What one check did: the ids of the runs it sent again, those it failed as lost,
    and those it left waiting because the workers were busy."""

    resent: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)


def job_send(kind: JobKind, run_id: int) -> None:
    """Hand ``run_id`` (committed) to a worker, recording when and how often it was sent."""
    kind.runs().filter(pk=run_id).update(
        dispatched_at=timezone.now(), dispatches=F("dispatches") + 1
    )
    job_dispatch(task=kind.task, run_id=run_id, refuse=kind.refuse, name=f"{kind.name}-{run_id}")


def jobs_recover(kind: JobKind, *, now: datetime | None = None) -> Recovered:
    """Fail the kind's runs pending past the lost bound, and send again those pending past
    the resend interval (once per interval); while the workers are busy, only stamp the
    pending runs ``held_at``.  The beat check of each kind calls this."""
    now = now or timezone.now()
    if jobs_busy():
        recovered = Recovered(held=list(kind.runs().order_by("pk").values_list("pk", flat=True)))
        kind.runs().filter(pk__in=recovered.held).update(held_at=now)
        return recovered
    recovered = Recovered(lost=_fail_lost(kind, now))
    resend = timedelta(seconds=settings.HARBORPY_JOB_RESEND_SECONDS)
    due = _unsent_since(kind, now - resend).exclude(_lost(kind, now))
    note = f"{job_stamp(now)}: no worker took it within {_span(resend)}; sent to a worker again\n"
    for run_id in due.order_by("pk").values_list("pk", flat=True):
        # Claims this resend: a second beat at the same time finds dispatched_at moved on.
        claimed = (
            _unsent_since(kind, now - resend)
            .filter(pk=run_id)
            .update(
                dispatched_at=now,
                dispatches=F("dispatches") + 1,
                **{kind.note: Concat(kind.note, Value(note))},
            )
        )
        if not claimed:
            continue
        logger.warning("%s-%s was pending too long: sent to a worker again", kind.name, run_id)
        transaction.on_commit(_sender(kind, run_id))
        recovered.resent.append(run_id)
    return recovered


def jobs_fail_lost(kind: JobKind, *, now: datetime | None = None) -> list[int]:
    """Fail, through the kind's ``refuse``, its runs pending longer than
    HARBORPY_JOB_LOST_SECONDS since they were recorded (or last held while the workers
    were busy); return their ids.  None while the workers are busy."""
    now = now or timezone.now()
    return [] if jobs_busy() else _fail_lost(kind, now)


def _fail_lost(kind: JobKind, now: datetime) -> list[int]:
    bound = _span(timedelta(seconds=settings.HARBORPY_JOB_LOST_SECONDS))
    lost = []
    old = kind.runs().filter(_lost(kind, now))
    for run_id, sent in old.order_by("pk").values_list("pk", "dispatches"):
        # False when a worker claimed it meanwhile: it runs after all.
        if kind.refuse(run_id, f"lost: no worker took it within {bound} ({_times(sent)})"):
            logger.warning("%s-%s was never taken by a worker: failed as lost", kind.name, run_id)
            lost.append(run_id)
    return lost


def _unsent_since(kind: JobKind, cutoff: datetime) -> models.QuerySet[Any]:
    """The pending runs not sent (or, never sent, not recorded), nor held, since ``cutoff``."""
    return kind.runs().filter(
        Q(dispatched_at__lt=cutoff)
        | Q(dispatched_at__isnull=True, **{f"{kind.created}__lt": cutoff}),
        Q(held_at__isnull=True) | Q(held_at__lt=cutoff),
    )


def _lost(kind: JobKind, now: datetime) -> Q:
    """Pending past the lost bound: recorded, and last held, before it."""
    cutoff = now - timedelta(seconds=settings.HARBORPY_JOB_LOST_SECONDS)
    return Q(**{f"{kind.created}__lt": cutoff}) & (Q(held_at__isnull=True) | Q(held_at__lt=cutoff))


def _sender(kind: JobKind, run_id: int) -> Callable[[], None]:
    """Send again; a broker refusing a resend is noted, not fatal: the run stays pending,
    to be sent at the next interval or failed as lost at the bound."""

    def noted(run_id: int, reason: str) -> bool:
        line = f"{job_stamp(timezone.now())}: {reason}\n"
        return bool(
            kind.runs().filter(pk=run_id).update(**{kind.note: Concat(kind.note, Value(line))})
        )

    def send() -> None:
        job_dispatch(task=kind.task, run_id=run_id, refuse=noted, name=f"{kind.name}-{run_id}")

    return send


def _times(count: int) -> str:
    return {0: "never sent", 1: "sent once"}.get(count, f"sent {count} times")


def job_stamp(moment: datetime) -> str:
    """How a run's log dates its lines."""
    return timezone.localtime(moment).isoformat(timespec="seconds")


def _span(delta: timedelta) -> str:
    """``1 h``, ``2 min``, ``90 s``: settings are seconds, usually round ones."""
    seconds = int(delta.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
