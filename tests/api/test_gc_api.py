"""Garbage collection over the REST API: runs that really collect, on a Celery worker (Redis)
and, without Redis, in the server process; one at a time; the system admin's alone."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from distribution.gc import gc_lock
from distribution.models import Blob, GCRun, GCSchedule, GCStatus
from tests.api.team import call, errors, team_fixture, team_password_hash_fixture  # noqa: F401
from tests.distribution.helpers import blob_file, push_blob, push_image
from tests.fixtures.jobs import job_worker
from tests.fixtures.server import LiveServer, start_server

START = {"schedule": {"type": "Manual"}, "parameters": {"dry_run": False, "grace": 0}}


@pytest.fixture(name="gc_worker")
def gc_worker_fixture(registry: LiveServer, settings) -> Iterator[Any]:
    """A Celery worker on Redis in this process, on the server's database and store."""
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    with job_worker() as worker:
        yield worker


def finished(registry: LiveServer, location: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the run at ``location`` until it is no longer pending or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = call(registry, "GET", location.removeprefix("/api/v2.0/"))
        assert response.status_code == 200, response.text
        if response.json()["job_status"] not in ("Pending", "Running"):
            return response.json()
        time.sleep(0.1)
    raise AssertionError(f"{location} did not finish")


def collect_garbage(registry: LiveServer, *, rows: bool = True) -> None:
    """Start a run at grace 0 through the API; it must delete an unreferenced blob.

    ``rows``: the server uses the test database, whose blob rows are checked too.
    """
    image = push_image(registry, "library/gc", "v1")
    garbage = push_blob(registry, "library/gc", os.urandom(5000))
    assert blob_file(registry, garbage).exists()

    started = call(registry, "POST", "system/gc/schedule", json=START)
    assert started.status_code == 201, started.text
    location = started.headers["Location"]
    assert location == f"/api/v2.0/system/gc/{started.json()['id']}"
    assert started.json()["job_parameters"] == {
        "dry_run": False,
        "delete_untagged": False,
        "grace": 0,
    }

    run = finished(registry, location)
    assert run["job_status"] == "Success", run
    assert run["blobs_deleted"] == 1 and run["bytes_freed"] == 5000
    assert run["start_time"] and run["end_time"] and run["update_time"] == run["end_time"]
    assert not blob_file(registry, garbage).exists()
    assert not (rows and Blob.objects.filter(digest=garbage).exists())
    assert all(blob_file(registry, d).exists() for d in image.blobs)

    log = call(registry, "GET", location.removeprefix("/api/v2.0/") + "/log")
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert log.text.splitlines()[-1] == "freed 4.9 KiB: 1 blobs, 0 manifests, 0 uploads"


def test_a_run_started_over_the_api_collects_on_the_worker(registry, gc_worker) -> None:
    collect_garbage(registry)

    # a dry run, then the list: newest first, paged like every Harbor list
    dry_start = {**START, "parameters": {"dry_run": True}}
    dry = call(registry, "POST", "system/gc/schedule", json=dry_start)
    assert dry.status_code == 201, dry.text
    assert finished(registry, dry.headers["Location"])["job_status"] == "Success"
    listed = call(registry, "GET", "system/gc", params={"page_size": 1})
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "2"
    assert 'rel="next"' in listed.headers["Link"]
    (newest,) = listed.json()
    assert newest["id"] == dry.json()["id"] and newest["job_parameters"]["dry_run"] is True
    assert newest["job_parameters"]["grace"] == 7200  # HARBORPY_GC_GRACE's default
    assert newest["job_name"] == "GARBAGE_COLLECTION"
    # who started which run is in the audit log
    from audit.models import AuditEntry

    started = AuditEntry.objects.filter(action="gc", resource="system:gc").order_by("id")
    assert [(e.actor, e.detail["dry_run"]) for e in started][-2:] == [
        ("admin", False),
        ("admin", True),
    ]


@pytest.fixture
def redisless(registry: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    """A server on the test database without Redis: its own worker reads the filesystem queue."""
    server = start_server(tmp_path / "redisless", env={"REDIS_URL": ""}, workers=1)
    try:
        yield server
    finally:
        server.stop()


def test_without_redis_the_server_runs_the_collection_itself(redisless) -> None:
    collect_garbage(redisless)


def test_the_embedded_server_runs_the_collection_itself(tmp_path: Path) -> None:
    """SQLite, files, no Redis: the quick start's server (its locks are files)."""
    server = start_server(tmp_path / "embedded", embedded=True, workers=1)
    try:
        collect_garbage(server, rows=False)
        again = call(server, "POST", "system/gc/schedule", json=START)
        assert again.status_code == 201, again.text
        assert finished(server, again.headers["Location"])["blobs_deleted"] == 0
    finally:
        server.stop()


def test_one_run_at_a_time(registry, gc_worker) -> None:
    held, release = threading.Event(), threading.Event()

    def collector() -> None:
        try:
            with gc_lock():
                held.set()
                release.wait(30)
        finally:
            connection.close()

    running = GCRun.objects.create(status=GCStatus.RUNNING, grace=0)
    thread = threading.Thread(target=collector)
    thread.start()
    try:
        assert held.wait(10)
        busy = call(registry, "POST", "system/gc/schedule", json=START)
        assert busy.status_code == 409 and errors(busy) == ["CONFLICT"], busy.text
    finally:
        release.set()
        thread.join(30)

    waiting = GCRun.objects.create(status=GCStatus.PENDING, grace=0)
    busy = call(registry, "POST", "system/gc/schedule", json=START)
    assert busy.status_code == 409, busy.text
    waiting.delete()

    # Nobody holds the lock: the run marked running died with its collector.
    started = call(registry, "POST", "system/gc/schedule", json=START)
    assert started.status_code == 201, started.text
    running.refresh_from_db()
    assert running.status == GCStatus.FAILED and running.log.endswith("interrupted\n")
    assert finished(registry, started.headers["Location"])["job_status"] == "Success"
    assert GCRun.objects.count() == 2


def test_the_schedule_is_set_through_the_api(registry) -> None:
    schedule = call(registry, "GET", "system/gc/schedule")
    assert schedule.status_code == 200
    assert schedule.json()["schedule"] == {"type": "None", "cron": "", "next_scheduled_time": None}
    assert (schedule.json()["source"], schedule.json()["update_time"]) == ("setting", None)

    daily = {"schedule": {"type": "Daily"}, "parameters": {"delete_untagged": True}}
    put = call(registry, "PUT", "system/gc/schedule", json=daily)
    assert put.status_code == 200, put.text
    got = call(registry, "GET", "system/gc/schedule").json()
    assert got == put.json()
    assert got["schedule"]["type"] == "Daily" and got["schedule"]["cron"] == "0 0 0 * * *"
    following = datetime.fromisoformat(got["schedule"]["next_scheduled_time"])
    assert (following.hour, following.minute) == (0, 0)
    assert timedelta(0) < following - datetime.now(UTC) <= timedelta(days=1)
    assert got["parameters"] == {"dry_run": False, "delete_untagged": True, "grace": 7200}
    assert (got["source"], got["updated_by"]) == ("admin", "admin") and got["update_time"]

    custom = {"schedule": {"type": "Custom", "cron": "30 3 * * 6"}, "parameters": {"grace": 60}}
    put = call(registry, "PUT", "system/gc/schedule", json=custom)
    assert put.status_code == 200, put.text
    got = call(registry, "GET", "system/gc/schedule").json()
    assert got["schedule"]["cron"] == "30 3 * * 6"
    assert datetime.fromisoformat(got["schedule"]["next_scheduled_time"]).isoweekday() == 6
    assert got["parameters"] == {"dry_run": False, "delete_untagged": False, "grace": 60}

    from audit.models import AuditEntry

    audited = AuditEntry.objects.filter(resource="system:gc-schedule").order_by("id")
    assert [(e.actor, e.action, e.detail["type"], e.detail["cron"]) for e in audited] == [
        ("admin", "gc", "Daily", "0 0 0 * * *"),
        ("admin", "gc", "Custom", "30 3 * * 6"),
    ]

    for body, message in [
        ({"schedule": {"type": "Custom"}}, "needs a cron expression"),
        ({"schedule": {"type": "Custom", "cron": "61 * * * *"}}, "schedule.cron"),
        ({"schedule": {"type": "Custom", "cron": "every night"}}, "five fields"),
        ({"schedule": {"type": "Sometimes"}}, "one of None, Hourly"),
        ({"schedule": {"type": "Manual"}}, "POST a Manual schedule"),
        ({"schedule": {"type": "Daily"}, "parameters": {"grace": -1}}, "parameters.grace"),
        ({"parameters": {}}, "required"),
    ]:
        refused = call(registry, "PUT", "system/gc/schedule", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert message in refused.text, (body, refused.text)
    assert call(registry, "GET", "system/gc/schedule").json()["schedule"]["cron"] == "30 3 * * 6"
    assert AuditEntry.objects.filter(resource="system:gc-schedule").count() == 2

    none = call(registry, "PUT", "system/gc/schedule", json={"schedule": {"type": "None"}})
    assert none.status_code == 200, none.text
    assert none.json()["schedule"] == {"type": "None", "cron": "", "next_scheduled_time": None}

    # POST still starts a run now, and only that
    other = {"schedule": {"type": "Daily", "cron": "0 0 0 * * *"}}
    refused = call(registry, "POST", "system/gc/schedule", json=other)
    assert refused.status_code == 400 and "PUT sets the periodic schedule" in refused.text
    assert not GCRun.objects.exists()


@pytest.mark.parametrize("who", ["pat", "out", "anonymous"])
def test_only_the_system_admin(registry, team, who) -> None:
    run = GCRun.objects.create(status=GCStatus.SUCCEEDED, grace=0, log="done\n")
    expected = 401 if who == "anonymous" else 403
    for method, path in [
        ("GET", "system/gc"),
        ("GET", f"system/gc/{run.pk}"),
        ("GET", f"system/gc/{run.pk}/log"),
        ("GET", "system/gc/schedule"),
        ("POST", "system/gc/schedule"),
        ("PUT", "system/gc/schedule"),
    ]:
        response = call(registry, method, path, who=who, json=START)
        assert response.status_code == expected, (method, path, response.text)
    assert GCRun.objects.count() == 1
    assert not GCSchedule.objects.exists()
    assert call(registry, "GET", f"system/gc/{run.pk + 1}").status_code == 404
