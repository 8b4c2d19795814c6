"""The command line, the Celery task on a real worker (Redis), and the beat schedule."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.db import connection

from audit.models import AuditEntry
from audit.services import SYSTEM
from distribution.exceptions import ScheduleInvalid
from distribution.gc import gc_enqueue, gc_schedule_get, gc_schedule_set, gc_scheduled
from distribution.models import GCRun, GCStatus
from harborpy.celery import app, beat_schedule, cron_schedule
from harborpy.checks import gc_settings
from jobs.cron import cron_next
from tests.fixtures.server import database_url

from .helpers import age_everything, gone, intact, lock_held_elsewhere, push_blob, push_image

ROOT = Path(__file__).resolve().parents[2]


def harborpy_gc(*args: str, storage: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=database_url(), HARBORPY_STORAGE=storage)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "harborpy.cli", "gc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_reports_progress_and_refuses_a_second_collector(
    project, settings, tmp_path
) -> None:
    storage = (tmp_path / "storage").as_uri()
    settings.HARBORPY_STORAGE = storage
    image = push_image("gct/cli", "v1")
    garbage = push_blob("gct/cli", os.urandom(3 << 20))
    age_everything()

    dry = harborpy_gc("--dry-run", storage=storage)
    assert dry.returncode == 0, dry.stderr
    assert "count: " in dry.stderr and "blobs" in dry.stderr
    assert dry.stderr.strip().splitlines()[-1] == (
        "would free 3 MiB: 1 blobs, 0 manifests, 0 uploads"
    )
    assert intact(garbage)

    with lock_held_elsewhere():
        refused = harborpy_gc("--grace", "0", storage=storage)
    assert refused.returncode == 75, refused.stderr
    assert "another garbage collection is running" in refused.stderr
    assert intact(garbage)

    done = harborpy_gc("--untagged", "--grace", "60", storage=storage)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert any(line.startswith("mark: ") and "/" in line for line in lines), lines
    assert lines[-1] == "freed 3 MiB: 1 blobs, 0 manifests, 0 uploads"
    assert gone(garbage) and all(intact(d) for d in image.blobs)
    runs = list(GCRun.objects.order_by("id").values_list("dry_run", "untagged", "grace", "status"))
    assert runs == [(True, False, 7200, "succeeded"), (False, True, 60, "succeeded")]


def wait_finished(run_id: int, timeout: float = 30) -> GCRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = GCRun.objects.get(pk=run_id)
        if run.status in (GCStatus.SUCCEEDED, GCStatus.FAILED):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {GCRun.objects.get(pk=run_id).status}")


def test_the_task_runs_a_recorded_collection_once(celery_worker, project, fs_store) -> None:
    from distribution.tasks import run_gc

    assert app.conf.broker_url.startswith("redis://")
    garbage = push_blob("gct/task", os.urandom(1000))
    age_everything()

    run = gc_enqueue(grace=60)
    assert run.status == GCStatus.PENDING

    finished = wait_finished(run.pk)
    assert finished.status == GCStatus.SUCCEEDED, finished.log
    assert finished.blobs_deleted == 1 and gone(garbage)

    # Delivered again (a redelivery, a double click): nothing happens to a finished run.
    kept = push_blob("gct/task", os.urandom(10))
    age_everything()
    run_gc.delay(run.pk)
    later = wait_finished(gc_enqueue(grace=10**6).pk)  # the queue is FIFO on one solo worker
    assert later.status == GCStatus.SUCCEEDED and later.blobs_deleted == 0
    again = GCRun.objects.get(pk=run.pk)
    assert (again.finished_at, again.blobs_deleted, again.log) == (
        finished.finished_at,
        finished.blobs_deleted,
        finished.log,
    )
    assert intact(kept)


def test_beat_checks_the_schedule_every_minute(settings) -> None:
    settings.HARBORPY_GC_SCHEDULE = ""
    entry = beat_schedule(settings)["garbage-collection"]
    assert entry["task"] == "distribution.gc_scheduled"
    assert entry["schedule"] == crontab()  # the schedule in effect is read in the task
    assert gc_settings(None) == []

    settings.HARBORPY_GC_SCHEDULE = "30 3 * * 6"
    assert beat_schedule(settings)["garbage-collection"]["schedule"] == crontab()
    schedule = cron_schedule("30 3 * * 6")
    assert schedule.minute == {30} and schedule.day_of_week == {6}
    assert cron_schedule("0 30 3 * * 6") == schedule  # Harbor's form with seconds
    assert cron_schedule("@daily") == cron_schedule("0 0 * * *")

    settings.HARBORPY_GC_SCHEDULE = "every night"
    assert [e.id for e in gc_settings(None)] == ["harborpy.E006"]
    settings.HARBORPY_GC_SCHEDULE = "61 * * * *"
    assert [e.id for e in gc_settings(None)] == ["harborpy.E006"]


def test_celery_beat_has_the_checker_whatever_the_environment(tmp_path) -> None:
    probe = (
        "import django; django.setup()\n"
        "from harborpy.celery import app\n"
        "entry = app.conf.beat_schedule['garbage-collection']\n"
        "print(entry['task'], len(entry['schedule'].minute))\n"
    )
    env = dict(os.environ, HARBORPY_GC_SCHEDULE="0 4 * * *", HARBORPY_DATA=str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "harborpy.settings"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "distribution.gc_scheduled 60"


def test_the_next_run_of_a_schedule() -> None:
    at = datetime(2026, 12, 5, 7, 45, 30, tzinfo=UTC)  # a Saturday
    assert cron_next(cron_schedule("0 0 * * * *"), at) == at.replace(hour=8, minute=0, second=0)
    assert cron_next(cron_schedule("0 0 0 * * 0"), at) == datetime(2026, 12, 6, tzinfo=UTC)
    assert cron_next(cron_schedule("45 7 * * *"), at) == datetime(2026, 12, 6, 7, 45, tzinfo=UTC)
    assert cron_next(cron_schedule("*/20 * * * *"), at) == at.replace(minute=0, hour=8, second=0)
    assert cron_next(cron_schedule("0 0 29 2 *"), at) == datetime(2028, 2, 29, tzinfo=UTC)
    with pytest.raises(ValueError):  # Celery refuses a day that never comes
        cron_schedule("0 0 31 2 *")


@pytest.mark.django_db
def test_the_setting_is_the_schedule_until_an_admin_sets_one(settings) -> None:
    settings.HARBORPY_GC_SCHEDULE = "30 3 * * *"
    settings.HARBORPY_GC_SCHEDULE_UNTAGGED = True
    found = gc_schedule_get()
    assert (found.kind, found.cron, found.untagged, found.source) == (
        "Custom",
        "30 3 * * *",
        True,
        "setting",
    )
    gc_schedule_set(kind="None", actor=SYSTEM)
    assert (gc_schedule_get().cron, gc_schedule_get().source) == ("", "admin")
    gc_schedule_set(kind="Weekly", untagged=False, grace=60, actor=SYSTEM)
    found = gc_schedule_get()
    assert (found.kind, found.cron, found.untagged, found.grace) == (
        "Weekly",
        "0 0 0 * * 0",
        False,
        60,
    )
    for kind, cron in [("Custom", ""), ("Custom", "61 * * * *"), ("Manual", ""), ("daily", "")]:
        with pytest.raises(ScheduleInvalid):
            gc_schedule_set(kind=kind, cron=cron, actor=SYSTEM)
    assert gc_schedule_get() == found


AT = datetime(2026, 11, 30, 3, 30, 5, tzinfo=UTC)


def test_the_checker_starts_one_run_in_a_due_minute(
    celery_worker, project, fs_store, settings
) -> None:
    settings.HARBORPY_GC_SCHEDULE = "30 3 * * *"
    settings.HARBORPY_GC_SCHEDULE_UNTAGGED = True
    garbage = push_blob("gct/beat", os.urandom(10))
    age_everything()

    assert gc_scheduled(now=AT.replace(minute=29)) is None  # not due
    run = gc_scheduled(now=AT)
    assert run is not None and (run.status, run.trigger, run.untagged) == (
        GCStatus.PENDING,
        "schedule",
        True,
    )
    finished = wait_finished(run.pk)  # carried out by the worker
    assert finished.status == GCStatus.SUCCEEDED and gone(garbage)
    # called again in the same minute (a second beat, a late tick): the minute is claimed
    assert gc_scheduled(now=AT.replace(second=50)) is None
    assert GCRun.objects.count() == 1

    # an admin's schedule replaces the setting's at once; None: no runs at all
    gc_schedule_set(kind="None", actor=SYSTEM)
    assert gc_scheduled(now=AT + timedelta(days=1)) is None
    gc_schedule_set(kind="Custom", cron="31 3 * * *", grace=10**6, actor=SYSTEM)
    assert gc_scheduled(now=AT + timedelta(days=1)) is None
    later = gc_scheduled(now=AT + timedelta(days=1, minutes=1))
    assert later is not None and (later.grace, later.untagged) == (10**6, False)
    assert wait_finished(later.pk).status == GCStatus.SUCCEEDED
    assert GCRun.objects.count() == 2
    assert AuditEntry.objects.filter(action="gc", detail__trigger="schedule").count() == 2


def test_two_checkers_in_the_same_minute_start_one_run(celery_worker, project, fs_store) -> None:
    gc_schedule_set(kind="Custom", cron="* * * * *", actor=SYSTEM)
    barrier = threading.Barrier(2)
    started: list[object] = []

    def check() -> None:
        try:
            barrier.wait(10)
            started.append(gc_scheduled(now=AT))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len([r for r in started if r is not None]) == 1, started
    assert GCRun.objects.count() == 1
    wait_finished(GCRun.objects.get().pk)


def test_the_beat_task_starts_a_run_the_worker_carries_out(
    celery_worker, project, fs_store
) -> None:
    from distribution.tasks import run_scheduled_gc

    gc_schedule_set(kind="Custom", cron="* * * * *", actor=SYSTEM)
    run_scheduled_gc.delay()  # what Celery beat sends each minute
    deadline = time.monotonic() + 30
    while not GCRun.objects.exists():
        assert time.monotonic() < deadline, "the checker started no run"
        time.sleep(0.1)
    run = wait_finished(GCRun.objects.get().pk)
    assert (run.status, run.trigger) == (GCStatus.SUCCEEDED, "schedule")


def test_a_run_no_worker_took_for_an_hour_does_not_block_the_next(db) -> None:
    from django.utils import timezone

    from distribution.exceptions import GCBusy
    from distribution.gc import gc_start

    lost = gc_enqueue()
    with pytest.raises(GCBusy):  # pending a moment ago: it is waiting for a worker
        gc_start()
    GCRun.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    started = gc_start()
    lost.refresh_from_db()
    assert lost.status == GCStatus.FAILED and "lost: no worker took it" in lost.log
    assert started.status == GCStatus.PENDING and started.pk != lost.pk
