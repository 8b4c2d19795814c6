"""The command line, the Celery task on a real worker (Redis), and the beat schedule."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from distribution.gc import gc_enqueue
from distribution.models import GCRun, GCStatus
from harborpy.celery import app, beat_schedule, cron_schedule
from harborpy.checks import gc_settings
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


@pytest.fixture
def celery_worker(transactional_db):
    app.loader.import_module("distribution.tasks")
    # No ping check: it needs a result backend, which harborpy has none of (state is on rows).
    # start_worker returns once the worker thread is consuming.
    with start_worker(app, pool="solo", perform_ping_check=False) as worker:
        yield worker


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


def test_the_schedule_is_a_cron_expression_for_celery_beat(settings) -> None:
    settings.HARBORPY_GC_SCHEDULE = ""
    assert "garbage-collection" not in beat_schedule(settings)
    assert gc_settings(None) == []

    settings.HARBORPY_GC_SCHEDULE = "30 3 * * 6"
    entry = beat_schedule(settings)["garbage-collection"]
    assert entry["task"] == "distribution.gc_scheduled"
    assert entry["schedule"] == cron_schedule("30 3 * * 6")
    assert entry["schedule"].minute == {30} and entry["schedule"].day_of_week == {6}
    assert cron_schedule("0 30 3 * * 6") == entry["schedule"]  # Harbor's form with seconds
    assert cron_schedule("@daily") == cron_schedule("0 0 * * *")

    settings.HARBORPY_GC_SCHEDULE = "every night"
    assert [e.id for e in gc_settings(None)] == ["harborpy.E006"]
    settings.HARBORPY_GC_SCHEDULE = "61 * * * *"
    assert [e.id for e in gc_settings(None)] == ["harborpy.E006"]


def test_celery_beat_sees_the_schedule_from_the_environment(tmp_path) -> None:
    probe = (
        "import django; django.setup()\n"
        "from harborpy.celery import app\n"
        "entry = app.conf.beat_schedule['garbage-collection']\n"
        "print(entry['task'], sorted(entry['schedule'].hour))\n"
    )
    env = dict(os.environ, HARBORPY_GC_SCHEDULE="0 4 * * *", HARBORPY_DATA=str(tmp_path))
    env["DJANGO_SETTINGS_MODULE"] = "harborpy.settings"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "distribution.gc_scheduled [4]"


@pytest.mark.django_db
def test_a_scheduled_run_is_recorded_and_carried_out(project, fs_store, settings) -> None:
    from distribution.tasks import run_scheduled_gc

    settings.HARBORPY_GC_SCHEDULE_UNTAGGED = True
    garbage = push_blob("gct/beat", os.urandom(10))
    age_everything()

    run_scheduled_gc()

    run = GCRun.objects.get()
    assert (run.status, run.untagged, run.grace) == (GCStatus.SUCCEEDED, True, 7200)
    assert gone(garbage)
