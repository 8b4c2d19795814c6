"""Audit log rotation over the REST API (Harbor's /system/purgeaudit): runs on a Celery worker
(Redis) that really purge, the schedule, bad input, one run at a time, the system admin's alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEntry, AuditPurgeRun, AuditPurgeSchedule, PurgeStatus
from audit.services import Event, _append
from tests.api.team import call, errors, team_fixture, team_password_hash_fixture  # noqa: F401
from tests.fixtures.jobs import job_worker
from tests.fixtures.server import LiveServer, start_server

START = {
    "schedule": {"type": "Manual"},
    "parameters": {"audit_retention_hour": 24, "include_operations": "pull", "dry_run": False},
}


@pytest.fixture(name="audit_worker")
def audit_worker_fixture(registry: LiveServer) -> Iterator[Any]:
    """A Celery worker on Redis in this process, on the server's (the test) database."""
    with job_worker() as worker:
        yield worker


def old(count: int, action: str, hours: int = 48) -> None:
    at = timezone.now() - timedelta(hours=hours)
    _append([Event("alice", action, f"library/app:{i}", at=at) for i in range(count)])


def finished(registry: LiveServer, location: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = call(registry, "GET", location.removeprefix("/api/v2.0/"))
        assert response.status_code == 200, response.text
        if response.json()["job_status"] not in ("Pending", "Running"):
            return response.json()
        time.sleep(0.1)
    raise AssertionError(f"{location} did not finish")


def test_a_purge_started_over_the_api_runs_on_the_worker(registry, audit_worker) -> None:
    old(6, "pull")
    old(2, "push")
    started = call(registry, "POST", "system/purgeaudit/schedule", json=START)
    assert started.status_code == 201, started.text
    location = started.headers["Location"]
    assert location == f"/api/v2.0/system/purgeaudit/{started.json()['id']}"
    assert started.json()["job_parameters"] == {
        "audit_retention_hour": 24,
        "include_operations": "pull",
        "dry_run": False,
    }
    assert started.json()["job_name"] == "PURGE_AUDIT" and started.json()["operator"] == "admin"

    run = finished(registry, location)
    assert run["job_status"] == "Success" and run["deleted"] == 6, run
    assert run["start_time"] and run["end_time"] and run["cutoff"]
    assert not AuditEntry.objects.filter(action="pull").exists()
    assert AuditEntry.objects.filter(action="push").count() == 2
    log = call(registry, "GET", location.removeprefix("/api/v2.0/") + "/log")
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert log.text.splitlines()[-1] == "deleted 6 entries"

    verify = call(registry, "GET", "audit-logs/verify")
    assert verify.json()["intact"] is True, verify.json()

    dry = {**START, "parameters": {"audit_retention_hour": 1, "dry_run": True}}
    dry_run = call(registry, "POST", "system/purgeaudit/schedule", json=dry)
    assert dry_run.status_code == 201, dry_run.text
    assert finished(registry, dry_run.headers["Location"])["deleted"] == 2
    assert AuditEntry.objects.filter(action="push").count() == 2
    listed = call(registry, "GET", "system/purgeaudit", params={"page_size": 1})
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "2"
    assert 'rel="next"' in listed.headers["Link"]
    (newest,) = listed.json()
    assert newest["id"] == dry_run.json()["id"]
    assert newest["job_parameters"] == {
        "audit_retention_hour": 1,
        "include_operations": "",
        "dry_run": True,
    }


def test_bad_input_is_refused_with_a_clear_message(registry) -> None:
    def params(**changed: Any) -> dict[str, Any]:
        return {**START, "parameters": {**START["parameters"], **changed}}

    for body, message in [
        (params(audit_retention_hour=-1), "audit_retention_hour: 0 to"),
        (params(audit_retention_hour="soon"), "audit_retention_hour"),
        ({"schedule": {"type": "Manual"}}, "audit_retention_hour: required"),
        (params(include_operations="push,teleport"), "include_operations: unknown 'teleport'"),
        ({**START, "schedule": {"type": "Daily"}}, "PUT sets the periodic schedule"),
        ({"parameters": START["parameters"]}, "required"),
    ]:
        refused = call(registry, "POST", "system/purgeaudit/schedule", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert errors(refused) == ["BAD_REQUEST"] and message in refused.text, refused.text
    hours = {"audit_retention_hour": 24}
    for body, message in [
        ({"schedule": {"type": "Custom", "cron": "every night"}, "parameters": hours}, "five"),
        ({"schedule": {"type": "Custom", "cron": "61 * * * *"}, "parameters": hours}, "cron"),
        ({"schedule": {"type": "Custom"}, "parameters": hours}, "needs a cron expression"),
        ({"schedule": {"type": "Manual"}, "parameters": hours}, "POST a Manual schedule"),
        ({"schedule": {"type": "Daily"}}, "audit_retention_hour: required"),
        ({"schedule": {"type": "Daily"}, "parameters": {"audit_retention_hour": -5}}, "0 to"),
    ]:
        refused = call(registry, "PUT", "system/purgeaudit/schedule", json=body)
        assert refused.status_code == 400 and message in refused.text, (body, refused.text)
    assert not AuditPurgeRun.objects.exists() and not AuditPurgeSchedule.objects.exists()


def test_one_run_at_a_time(registry) -> None:
    waiting = AuditPurgeRun.objects.create(retention_hour=1)  # pending: no worker here
    busy = call(registry, "POST", "system/purgeaudit/schedule", json=START)
    assert busy.status_code == 409 and errors(busy) == ["CONFLICT"], busy.text
    assert "pending or running" in busy.text
    AuditPurgeRun.objects.filter(pk=waiting.pk).update(
        status=PurgeStatus.RUNNING, heartbeat_at=timezone.now()
    )
    assert call(registry, "POST", "system/purgeaudit/schedule", json=START).status_code == 409
    assert AuditPurgeRun.objects.count() == 1


def test_the_schedule_is_set_through_the_api(registry) -> None:
    got = call(registry, "GET", "system/purgeaudit/schedule")
    assert got.status_code == 200
    assert got.json()["schedule"] == {"type": "None", "cron": "", "next_scheduled_time": None}

    daily = {
        "schedule": {"type": "Daily"},
        "parameters": {"audit_retention_hour": 720, "include_operations": "pull,login"},
    }
    put = call(registry, "PUT", "system/purgeaudit/schedule", json=daily)
    assert put.status_code == 200, put.text
    got = call(registry, "GET", "system/purgeaudit/schedule").json()
    assert got == put.json()
    assert got["schedule"]["cron"] == "0 0 0 * * *" and got["schedule"]["next_scheduled_time"]
    assert got["parameters"] == {
        "audit_retention_hour": 720,
        "include_operations": "login,pull",
        "dry_run": False,
    }
    assert got["updated_by"] == "admin" and got["update_time"]
    audited = AuditEntry.objects.get(resource="system:purgeaudit-schedule")
    assert (audited.actor, audited.action, audited.detail["type"]) == ("admin", "purge", "Daily")

    none = call(registry, "PUT", "system/purgeaudit/schedule", json={"schedule": {"type": "None"}})
    assert none.status_code == 200, none.text
    assert none.json()["schedule"]["next_scheduled_time"] is None
    assert not AuditPurgeRun.objects.exists()


@pytest.mark.parametrize("who", ["pat", "out", "anonymous"])
def test_only_the_system_admin(registry, team, who) -> None:
    run = AuditPurgeRun.objects.create(status=PurgeStatus.SUCCEEDED, retention_hour=1, log="x\n")
    expected = 401 if who == "anonymous" else 403
    for method, path in [
        ("GET", "system/purgeaudit"),
        ("GET", f"system/purgeaudit/{run.pk}"),
        ("GET", f"system/purgeaudit/{run.pk}/log"),
        ("GET", "system/purgeaudit/schedule"),
        ("POST", "system/purgeaudit/schedule"),
        ("PUT", "system/purgeaudit/schedule"),
    ]:
        response = call(registry, method, path, who=who, json=START)
        assert response.status_code == expected, (method, path, response.text)
    assert AuditPurgeRun.objects.count() == 1 and not AuditPurgeSchedule.objects.exists()
    assert call(registry, "GET", f"system/purgeaudit/{run.pk + 1}").status_code == 404


def test_the_embedded_server_runs_a_purge_itself(tmp_path: Path) -> None:
    """SQLite, files, no Redis: the quick start's own worker carries the run out."""
    server = start_server(tmp_path / "embedded", embedded=True, workers=1)
    try:
        body = {"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 0}}
        started = call(server, "POST", "system/purgeaudit/schedule", json=body)
        assert started.status_code == 201, started.text
        run = finished(server, started.headers["Location"])
        assert run["job_status"] == "Success" and run["deleted"] >= 1, run  # its start record
        verify = call(server, "GET", "audit-logs/verify").json()
        assert verify["intact"] is True, verify
    finally:
        server.stop()
