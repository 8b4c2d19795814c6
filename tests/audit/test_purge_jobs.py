"""Audit log rotation as a job: the Celery task on a real worker (Redis), the beat entry."""

from __future__ import annotations

import time
from datetime import timedelta

from celery.schedules import crontab
from django.utils import timezone

from audit.models import AuditEntry, AuditPurgeRun, PurgeStatus
from audit.rotation import audit_purge_start
from audit.schedule import audit_purge_schedule_set, audit_purge_scheduled
from audit.selectors import audit_verify
from audit.services import SYSTEM, Actor, Event, _append
from harborpy.celery import app, beat_schedule

ADMIN = Actor("admin", "127.0.0.1")


def wait_finished(run_id: int, timeout: float = 30) -> AuditPurgeRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = AuditPurgeRun.objects.get(pk=run_id)
        if run.status in (PurgeStatus.SUCCEEDED, PurgeStatus.FAILED):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {AuditPurgeRun.objects.get(pk=run_id)}")


def old_entries(count: int, action: str, hours: int) -> None:
    at = timezone.now() - timedelta(hours=hours)
    _append([Event("alice", action, f"lib/app:{i}", at=at) for i in range(count)])


def test_a_worker_carries_out_a_started_purge_once(celery_worker) -> None:
    from audit.tasks import run_audit_purge

    assert app.conf.broker_url.startswith("redis://")
    old_entries(12, "pull", 50)
    old_entries(3, "push", 50)
    run = audit_purge_start(retention_hour=24, operations="pull", actor=ADMIN)
    assert run.status == PurgeStatus.PENDING

    finished = wait_finished(run.pk)
    assert (finished.status, finished.deleted) == (PurgeStatus.SUCCEEDED, 12), finished.log
    assert finished.started_at and finished.finished_at and finished.cutoff
    assert not AuditEntry.objects.filter(action="pull").exists()
    assert AuditEntry.objects.filter(action="push").count() == 3
    check = audit_verify()
    assert check.intact and check.purged == 12, check.reason

    # Delivered again: the finished run is left alone, the new pulls stay.
    old_entries(2, "pull", 50)
    run_audit_purge.delay(run.pk)
    later = wait_finished(audit_purge_start(retention_hour=10**5, actor=ADMIN).pk)  # FIFO
    assert later.deleted == 0
    again = AuditPurgeRun.objects.get(pk=run.pk)
    assert (again.finished_at, again.deleted, again.log) == (
        finished.finished_at,
        12,
        finished.log,
    )
    assert AuditEntry.objects.filter(action="pull").count() == 2
    assert audit_verify().intact


def test_the_schedule_starts_a_run_a_worker_carries_out(celery_worker) -> None:
    old_entries(4, "login", 30)
    audit_purge_schedule_set(kind="Hourly", retention_hour=1, actor=ADMIN)
    run = audit_purge_scheduled(now=timezone.now().replace(minute=0))
    assert run is not None
    finished = wait_finished(run.pk)
    assert (finished.status, finished.trigger, finished.actor) == (
        "succeeded",
        "schedule",
        "system",
    )
    assert finished.deleted == 4
    batch = AuditEntry.objects.get(resource="system:audit-log")
    assert batch.actor == SYSTEM.name and batch.detail["run"] == run.pk


def test_beat_checks_the_rotation_schedule_every_minute(settings) -> None:
    entry = beat_schedule(settings)["audit-log-rotation"]
    assert entry["task"] == "audit.purge_scheduled"
    assert entry["schedule"] == crontab()
