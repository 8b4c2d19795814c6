"""Retention runs on a real Celery worker (Redis), and without Redis on the server's own worker."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import SYSTEM
from distribution.models import RetentionPolicy, RetentionRun
from distribution.retention import (
    retention_policy_set,
    retention_run_execute,
    retention_scheduled,
    retention_start,
)
from projects.models import Project
from tests.api.team import call, team_fixture, team_password_hash_fixture
from tests.api.test_gc_api import gc_worker_fixture, redisless
from tests.distribution.helpers import push_image, tags_of
from tests.gc.helpers import push_image as push_row_image

from .test_retention import age, finished_run, tags

# fixtures this module uses
__all__ = ["gc_worker_fixture", "redisless", "team_fixture", "team_password_hash_fixture"]

KEEP_NEWEST = {"rules": [{"repository": "**", "tag": "**", "latestPushedK": 1}], "schedule": ""}


def wait_run(run_id: int, timeout: float = 30) -> RetentionRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RetentionRun.objects.get(pk=run_id)
        if run.status in ("succeeded", "failed"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"retention run {run_id} did not finish")


def test_a_run_started_over_the_api_is_carried_out_by_the_worker(registry, team, gc_worker) -> None:
    for tag in ("old", "mid", "new"):
        push_image(registry, "team/app", tag)
    age("team/app", {"old": 3, "mid": 2, "new": 1})
    url = "projects/team/retention"
    assert call(registry, "PUT", url, "pat", json=KEEP_NEWEST).status_code == 200

    started = call(registry, "POST", f"{url}/executions", "dev", json={})
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "pending" and body["end_time"] is None
    assert body["deleted"] == 0  # answered at once: the worker has not decided anything yet
    done = finished_run(registry, started.headers["Location"])
    assert (done["status"], done["retained"], done["deleted"], done["manifests_deleted"]) == (
        "succeeded",
        1,
        2,
        2,
    )
    assert done["end_time"] and "delete team/app:old" in done["log"]
    assert tags_of(registry, "team/app") == ["new"]
    listed = call(registry, "GET", f"{url}/executions", "dev").json()
    assert [(r["id"], r["status"]) for r in listed] == [(body["id"], "succeeded")]
    # deletions are audited as the developer who started the run
    deleted = AuditEntry.objects.filter(action="delete", detail__run=body["id"])
    assert sorted(deleted.filter(detail__kind="tag").values_list("actor", "resource")) == [
        ("dev", "team/app:mid"),
        ("dev", "team/app:old"),
    ]
    assert AuditEntry.objects.filter(
        action="retention", actor="dev", detail__change="run", detail__run=body["id"]
    ).exists()


@pytest.fixture
def ret(transactional_db, settings, tmp_path) -> Project:
    settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
    return Project.objects.create(name="ret", public=False)


def push_rows(repository: str, days: dict[str, int]) -> None:
    for tag in days:
        push_row_image(repository, tag)
    age(repository, days)


def test_a_run_delivered_twice_runs_once(ret, gc_worker) -> None:
    from distribution.tasks import run_retention

    push_rows("ret/app", {"a": 3, "b": 2, "c": 1})
    policy = retention_policy_set(
        project=ret, rules=[{"latestPushedK": 2}], schedule="", actor=SYSTEM
    )
    run = wait_run(retention_start(policy=policy, dry_run=False).pk)
    assert (run.status, run.deleted) == ("succeeded", 1) and tags("ret/app") == ["b", "c"]

    # Delivered again: the run is not pending, so it is left alone, even though the
    # policy would now delete one more tag.
    retention_policy_set(project=ret, rules=[{"latestPushedK": 1}], schedule="", actor=SYSTEM)
    run_retention.delay(run.pk)
    marker = wait_run(retention_start(policy=policy, dry_run=True).pk)  # FIFO, one solo worker
    assert (marker.status, marker.deleted) == ("succeeded", 1)
    again = RetentionRun.objects.get(pk=run.pk)
    assert (again.finished_at, again.deleted, again.log) == (run.finished_at, 1, run.log)
    assert tags("ret/app") == ["b", "c"]
    assert AuditEntry.objects.filter(action="delete", detail__by="retention").count() == 2
    assert retention_run_execute(run_id=run.pk) == again  # called directly: still nothing


def test_scheduled_retention_goes_through_the_worker(ret, gc_worker) -> None:
    from distribution.tasks import run_scheduled_retention

    push_rows("ret/app", {"a": 2, "b": 1})
    other = Project.objects.create(name="other", public=False)
    push_rows("other/app", {"x": 2, "y": 1})
    for project in (ret, other):
        retention_policy_set(
            project=project, rules=[{"latestPushedK": 1}], schedule="* * * * *", actor=SYSTEM
        )

    run_scheduled_retention.delay()  # what Celery beat sends each minute

    deadline = time.monotonic() + 30
    while RetentionRun.objects.filter(status="succeeded").count() < 2:
        assert time.monotonic() < deadline, list(RetentionRun.objects.values("status", "log"))
        time.sleep(0.1)
    runs = RetentionRun.objects.order_by("policy__project__name")
    assert [(r.policy.project.name, r.trigger, r.deleted) for r in runs] == [
        ("other", "schedule", 1),
        ("ret", "schedule", 1),
    ]
    assert tags("ret/app") == ["b"] and tags("other/app") == ["y"]
    assert RetentionPolicy.objects.filter(scheduled_at__isnull=False).count() == 2
    # the minute they ran in, again (a second beat): both policies claimed it already
    claimed = RetentionPolicy.objects.get(project=ret).scheduled_at
    assert retention_scheduled(now=claimed + timedelta(seconds=30)) == []
    assert RetentionRun.objects.count() == 2


def test_a_failed_run_records_its_error_and_what_it_deleted(ret) -> None:
    push_rows("ret/a", {"a1": 2, "a2": 1})
    push_rows("ret/b", {"b1": 2, "b2": 1})
    policy = retention_policy_set(
        project=ret, rules=[{"latestPushedK": 1}], schedule="", actor=SYSTEM
    )
    # A rule from before the checks, which breaks the decision in repository b (after a).
    broken = {"repository": "b", "tag": "**", "latestPushedK": "one", "disabled": False}
    RetentionPolicy.objects.filter(pk=policy.pk).update(
        rules=[{**policy.rules[0], "repository": "a"}, broken]
    )
    run = retention_start(policy=RetentionPolicy.objects.get(pk=policy.pk), dry_run=False)
    # no worker consumes in this test: the task's body, called as the worker calls it
    retention_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and run.finished_at is not None
    assert "failed: TypeError" in run.log
    assert (run.retained, run.deleted, run.manifests_deleted) == (1, 1, 1)  # repository a
    assert tags("ret/a") == ["a2"] and tags("ret/b") == ["b1", "b2"]
    assert AuditEntry.objects.filter(action="delete", detail__run=run.pk).count() == 2


def test_without_redis_the_server_runs_retention_itself(redisless, team) -> None:
    for tag in ("a", "b"):
        push_image(redisless, "team/app", tag)
    age("team/app", {"a": 2, "b": 1})
    url = "projects/team/retention"
    assert call(redisless, "PUT", url, "pat", json=KEEP_NEWEST).status_code == 200
    started = call(redisless, "POST", f"{url}/executions", "pat", json={})
    assert started.status_code == 201, started.text
    done = finished_run(redisless, started.headers["Location"])
    assert (done["status"], done["deleted"]) == ("succeeded", 1)
    assert tags_of(redisless, "team/app") == ["b"]


def test_a_run_whose_worker_went_silent_is_failed_by_the_minute_check(db) -> None:
    project = Project.objects.create(name="stall", public=False)
    policy = retention_policy_set(project=project, actor=SYSTEM, **KEEP_NEWEST)
    now = timezone.now()
    silent = RetentionRun.objects.create(
        policy=policy,
        status="running",
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(minutes=16),
        log="retention of project stall",
    )
    never = RetentionRun.objects.create(
        policy=policy, status="running", started_at=now - timedelta(minutes=20)
    )
    alive = RetentionRun.objects.create(
        policy=policy,
        status="running",
        started_at=now - timedelta(hours=2),
        heartbeat_at=now - timedelta(minutes=1),
    )
    retention_scheduled(now=now)
    for run in (silent, never):
        run.refresh_from_db()
        assert run.status == "failed" and run.finished_at == now
        assert "stalled: no word from its worker" in run.log
    assert silent.log.startswith("retention of project stall\n")
    alive.refresh_from_db()
    assert alive.status == "running"


def test_a_run_marked_stalled_stays_failed_when_its_worker_comes_back(db) -> None:
    from distribution.retention import _execute

    project = Project.objects.create(name="late", public=False)
    policy = retention_policy_set(project=project, actor=SYSTEM, **KEEP_NEWEST)
    run = RetentionRun.objects.create(policy=policy, status="running")
    RetentionRun.objects.filter(pk=run.pk).update(status="failed")  # the minute check's mark
    _execute(run, SYSTEM, None)  # the silent worker finishes after all
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.log.endswith("finished after it was marked stalled")
    fresh = RetentionRun.objects.create(policy=policy, status="running")
    _execute(fresh, SYSTEM, None)
    fresh.refresh_from_db()
    assert fresh.status == "succeeded" and "stalled" not in fresh.log
