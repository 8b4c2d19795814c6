"""Runs whose message was lost: sent again by the per-minute checks, then failed as lost.

The services with an injected ``now`` for each kind of run (GC, retention, replication),
two checks racing for one resend, and a real Celery worker on Redis carrying out runs
whose only message was lost.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditPurgeRun
from audit.rotation import PURGE_JOBS, audit_purge_recover
from audit.services import SYSTEM
from distribution.gc import GC_JOBS, gc_recover, gc_start
from distribution.models import GCRun, RetentionRun
from distribution.retention import RETENTION_JOBS, retention_policy_set, retention_recover
from harborpy.checks import job_settings
from jobs.recovery import JobKind, Recovered, job_send
from projects.models import Project
from replication.models import Direction, Execution, RegistryEndpoint, ReplicationPolicy, Task
from replication.services import executions_recover
from replication.services.executions import EXECUTION_JOBS
from tests.gc.helpers import lock_held_elsewhere, push_image

AGAIN = "sent to a worker again"


@dataclass
class Kind:
    """One kind of run, as the tests create and inspect it."""

    name: str
    jobs: JobKind
    recover: Callable[..., Recovered]
    make: Callable[..., Any]  # make(created=..., **fields): a pending run recorded then

    def note(self, run: Any) -> str:
        run.refresh_from_db()
        return str(getattr(run, self.jobs.note))


def _policy() -> Any:
    project, _ = Project.objects.get_or_create(name="pend", defaults={"public": False})
    return retention_policy_set(
        project=project, rules=[{"latestPushedK": 1}], schedule="", actor=SYSTEM
    )


def _replication_policy() -> ReplicationPolicy:
    endpoint, _ = RegistryEndpoint.objects.get_or_create(name="nowhere", url="http://127.0.0.1:9")
    # Push policy whose filter takes no local repository: a run plans no task and
    # never calls the endpoint.
    policy, _ = ReplicationPolicy.objects.get_or_create(
        name="pend",
        defaults={"endpoint": endpoint, "direction": Direction.PUSH, "repository_filter": "none/x"},
    )
    return policy


def _gc(created: datetime, **fields: Any) -> GCRun:
    run = GCRun.objects.create(grace=3600, **fields)
    GCRun.objects.filter(pk=run.pk).update(created_at=created)
    return run


def _retention(created: datetime, **fields: Any) -> RetentionRun:
    return RetentionRun.objects.create(policy=_policy(), started_at=created, **fields)


def _purge(created: datetime, **fields: Any) -> AuditPurgeRun:
    run = AuditPurgeRun.objects.create(retention_hour=24, **fields)
    AuditPurgeRun.objects.filter(pk=run.pk).update(created_at=created)
    return run


def _execution(created: datetime, **fields: Any) -> Execution:
    execution = Execution.objects.create(policy=_replication_policy(), **fields)
    Execution.objects.filter(pk=execution.pk).update(created_at=created)
    return execution


KINDS = {
    "gc": Kind("gc", GC_JOBS, gc_recover, _gc),
    "retention": Kind("retention", RETENTION_JOBS, retention_recover, _retention),
    "replication": Kind("replication", EXECUTION_JOBS, executions_recover, _execution),
    "audit-purge": Kind("audit-purge", PURGE_JOBS, audit_purge_recover, _purge),
}


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    return KINDS[request.param]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """What reaches the broker: (task name, arguments) per message, for every kind's task."""
    messages: list[tuple[str, tuple[Any, ...]]] = []
    lock = threading.Lock()
    for jobs in (GC_JOBS, RETENTION_JOBS, EXECUTION_JOBS, PURGE_JOBS):
        task = jobs.task()

        def apply_async(args: tuple[Any, ...], name: str = task.name, **_: Any) -> None:
            with lock:
                messages.append((name, tuple(args)))

        monkeypatch.setattr(task, "apply_async", apply_async)
    return messages


@pytest.fixture
def check(kind: Kind, django_capture_on_commit_callbacks: Any) -> Callable[..., Recovered]:
    """The kind's beat check at ``now``, with the sends it leaves for after the commit
    (the test's transaction never commits)."""

    def check(now: datetime | None = None) -> Recovered:
        with django_capture_on_commit_callbacks(execute=True):
            return kind.recover(now=now)

    return check


@pytest.mark.django_db
def test_a_young_pending_run_is_left_alone(kind: Kind, sent, check, settings) -> None:
    settings.HARBORPY_JOB_RESEND_SECONDS = 120
    now = timezone.now()
    run = kind.make(now - timedelta(seconds=100))
    assert check(now=now) == Recovered()
    assert sent == [] and kind.note(run) == ""
    assert (run.status, run.dispatches, run.dispatched_at) == ("pending", 0, None)


@pytest.mark.django_db
def test_a_run_still_pending_is_sent_again_once_per_interval(
    kind: Kind, sent, check, settings
) -> None:
    settings.HARBORPY_JOB_RESEND_SECONDS = 120
    created = timezone.now() - timedelta(seconds=121)
    run = kind.make(created)
    task = (kind.jobs.task().name, (run.pk,))

    assert check(now=created + timedelta(seconds=121)) == Recovered(resent=[run.pk])
    assert sent == [task]
    assert kind.note(run).count(AGAIN) == 1 and "within 2 min" in kind.note(run)
    assert (run.status, run.dispatches) == ("pending", 1)
    assert run.dispatched_at == created + timedelta(seconds=121)

    # The same minute again (a second beat), and within the interval since the resend.
    assert check(now=created + timedelta(seconds=121)) == Recovered()
    assert check(now=created + timedelta(seconds=240)) == Recovered()
    assert sent == [task]

    assert check(now=created + timedelta(seconds=242)) == Recovered(resent=[run.pk])
    assert sent == [task, task] and kind.note(run).count(AGAIN) == 2
    assert run.dispatches == 2


@pytest.mark.django_db
def test_the_interval_counts_from_the_last_send(kind: Kind, sent, check, settings) -> None:
    settings.HARBORPY_JOB_RESEND_SECONDS = 120
    now = timezone.now()
    run = kind.make(now - timedelta(minutes=30))
    job_send(kind.jobs, run.pk)  # sent now (the first send may be late: a slow commit)
    assert len(sent) == 1
    run.refresh_from_db()
    assert run.dispatches == 1 and run.dispatched_at is not None
    assert check(now=run.dispatched_at + timedelta(seconds=119)) == Recovered()
    later = run.dispatched_at + timedelta(seconds=121)
    assert check(now=later) == Recovered(resent=[run.pk])
    assert len(sent) == 2


@pytest.mark.django_db
def test_a_run_no_worker_took_is_failed_as_lost(kind: Kind, sent, check, settings) -> None:
    settings.HARBORPY_JOB_RESEND_SECONDS = 120
    settings.HARBORPY_JOB_LOST_SECONDS = 3600
    now = timezone.now()
    run = kind.make(now - timedelta(seconds=3601), dispatches=29, dispatched_at=now)
    young = kind.make(now - timedelta(seconds=3599), dispatched_at=now - timedelta(seconds=121))

    assert check(now=now) == Recovered(resent=[young.pk], lost=[run.pk])
    note = kind.note(run)
    assert run.status == "failed" and run.finished_at is not None
    assert "lost: no worker took it within 1 h (sent 29 times)" in note
    assert sent == [(kind.jobs.task().name, (young.pk,))]  # the lost one is not sent
    assert check(now=now + timedelta(seconds=1)) == Recovered()  # failed once


@pytest.mark.django_db
def test_a_refused_resend_leaves_the_run_pending(kind: Kind, check, monkeypatch, settings) -> None:
    settings.HARBORPY_JOB_RESEND_SECONDS = 120

    def refused(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(kind.jobs.task(), "apply_async", refused)
    now = timezone.now()
    run = kind.make(now - timedelta(minutes=5))
    assert check(now) == Recovered(resent=[run.pk])
    note = kind.note(run)
    assert run.status == "pending" and run.dispatches == 1
    assert "could not hand the run to a worker: ConnectionError: the broker is down" in note
    assert check(now + timedelta(minutes=2, seconds=1)) == Recovered(resent=[run.pk])


@pytest.mark.django_db
def test_claimed_and_finished_runs_are_left_alone(kind: Kind, sent, check) -> None:
    old = timezone.now() - timedelta(days=1)
    runs = [kind.make(old, status=status) for status in ("running", "succeeded", "failed")]
    # A running collection is alive while its collector holds the lock (see below).
    with lock_held_elsewhere() if kind.name == "gc" else contextlib.nullcontext():
        assert check() == Recovered()
    assert sent == []
    assert [(r.status, kind.note(r)) for r in runs] == [
        ("running", ""),
        ("succeeded", ""),
        ("failed", ""),
    ]


def _busy_elsewhere(kind: Kind, now: datetime) -> Any:
    """A run of another kind that a live worker is carrying out (a long replication, say)."""
    other = KINDS["audit-purge" if kind.name == "replication" else "replication"]
    return other.make(now - timedelta(hours=3), status="running", heartbeat_at=now)


@pytest.mark.django_db
def test_pending_runs_wait_while_the_workers_are_busy(kind: Kind, sent, check, settings) -> None:
    settings.HARBORPY_JOB_RESEND_SECONDS = 120
    settings.HARBORPY_JOB_LOST_SECONDS = 3600
    now = timezone.now()
    # Queued two hours ago behind a long run: past both bounds, yet not lost.
    sent_at = now - timedelta(hours=2)
    run = kind.make(sent_at, dispatches=1, dispatched_at=sent_at)
    busy = _busy_elsewhere(kind, now)

    assert check(now=now) == Recovered(held=[run.pk])
    assert check(now=now + timedelta(minutes=1)) == Recovered(held=[run.pk])
    assert sent == [] and kind.note(run) == ""
    assert (run.status, run.dispatches) == ("pending", 1)
    assert run.held_at == now + timedelta(minutes=1)

    # The long run ends; the clocks count from the last check that found the workers busy.
    type(busy).objects.filter(pk=busy.pk).update(status="succeeded")
    free = now + timedelta(minutes=1)
    assert check(now=free + timedelta(seconds=119)) == Recovered()
    assert check(now=free + timedelta(seconds=121)) == Recovered(resent=[run.pk])
    assert sent == [(kind.jobs.task().name, (run.pk,))]
    assert check(now=free + timedelta(seconds=3599)) == Recovered(resent=[run.pk])
    assert check(now=free + timedelta(seconds=3601)) == Recovered(lost=[run.pk])
    assert "(sent 3 times)" in kind.note(run) and run.status == "failed"


@pytest.mark.django_db
def test_gc_start_leaves_a_queued_run_alone_while_the_workers_are_busy(settings, sent) -> None:
    from distribution.exceptions import GCBusy

    settings.HARBORPY_JOB_LOST_SECONDS = 600
    now = timezone.now()
    queued = _gc(now - timedelta(seconds=601))
    _busy_elsewhere(KINDS["gc"], now)
    with pytest.raises(GCBusy):
        gc_start()
    queued.refresh_from_db()
    assert queued.status == "pending" and sent == []


@pytest.mark.django_db
def test_only_a_live_collection_keeps_the_workers_busy(sent, django_capture_on_commit_callbacks):
    now = timezone.now()
    pending = _execution(now - timedelta(minutes=5))
    collecting = _gc(now - timedelta(hours=1), status="running")

    with lock_held_elsewhere():  # its collector is alive
        assert executions_recover(now=now) == Recovered(held=[pending.pk])
    collecting.refresh_from_db()
    assert collecting.status == "running"

    # Its collector died (the lock went with its connection): the run is failed, and
    # holds nothing back.
    with django_capture_on_commit_callbacks(execute=True):
        assert executions_recover(now=now + timedelta(minutes=3)) == Recovered(resent=[pending.pk])
    collecting.refresh_from_db()
    assert collecting.status == "failed" and collecting.log.endswith("interrupted\n")
    assert sent == [("replication.run_execution", (pending.pk,))]


@pytest.mark.django_db
def test_a_lost_execution_fails_its_planned_tasks_as_a_stall_does(sent) -> None:
    now = timezone.now()
    execution = _execution(now - timedelta(hours=2), total=3)
    for tag, status in (("a", "pending"), ("b", "pending"), ("c", "succeeded")):
        Task.objects.create(
            execution=execution, source=f"p/r:{tag}", destination="d", status=status
        )

    assert executions_recover(now=now).lost == [execution.pk]

    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error == "lost: no worker took it within 1 h (never sent)"
    assert (execution.total, execution.succeeded, execution.failed) == (3, 1, 2)
    assert sorted(execution.tasks.values_list("source", "status", "error")) == [
        ("p/r:a", "failed", execution.error),
        ("p/r:b", "failed", execution.error),
        ("p/r:c", "succeeded", ""),
    ]
    assert all(t.finished_at for t in execution.tasks.filter(status="failed"))


@pytest.mark.django_db
def test_gc_start_fails_a_lost_run_by_the_setting(
    settings, sent, django_capture_on_commit_callbacks
) -> None:
    settings.HARBORPY_JOB_LOST_SECONDS = 600
    lost = _gc(timezone.now() - timedelta(seconds=601))
    with django_capture_on_commit_callbacks(execute=True):
        started = gc_start()
    lost.refresh_from_db()
    assert lost.status == "failed" and "lost: no worker took it within 10 min" in lost.log
    assert started.status == "pending" and sent == [("distribution.gc_run", (started.pk,))]


@pytest.mark.django_db(transaction=True)
def test_two_checks_at_once_send_a_run_once(kind: Kind, sent) -> None:
    now = timezone.now()
    runs = [kind.make(now - timedelta(minutes=5)) for _ in range(20)]
    start = threading.Barrier(2)
    results: list[Recovered] = []

    def check() -> None:
        try:
            start.wait()
            results.append(kind.recover(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    resent = sorted(pk for result in results for pk in result.resent)
    assert resent == sorted(run.pk for run in runs)  # each by one check or the other
    assert sorted(args for _, args in sent) == [(run.pk,) for run in runs]
    assert {kind.note(run).count(AGAIN) for run in runs} == {1}


def test_the_settings_are_checked(settings) -> None:
    assert job_settings(None) == []
    settings.HARBORPY_JOB_RESEND_SECONDS = 0
    assert [e.id for e in job_settings(None)] == ["harborpy.E007"]
    settings.HARBORPY_JOB_RESEND_SECONDS, settings.HARBORPY_JOB_LOST_SECONDS = 600, 600
    assert [e.id for e in job_settings(None)] == ["harborpy.E008"]


# --- on a real worker (Redis) ------------------------------------------------------------


def wait_done(run: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status not in ("pending", "running"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"{run} did not finish")


BEAT = {  # what Celery beat sends each minute
    "gc": "distribution.gc_scheduled",
    "retention": "distribution.retention_scheduled",
    "replication": "replication.scheduled",
    "audit-purge": "audit.purge_scheduled",
}


@pytest.fixture
def worker(celery_worker, settings, tmp_path) -> Any:
    """The GC job tests' worker, with a blob store of this test."""
    settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
    return celery_worker


def test_a_run_whose_message_was_lost_is_done_after_the_beat_check(kind: Kind, worker) -> None:
    from harborpy.celery import app

    assert app.conf.broker_url.startswith("redis://")
    # What a lost message leaves: a pending row, recorded and sent a while ago, and
    # nothing in the queue.
    run = kind.make(timezone.now() - timedelta(minutes=5))
    type(run).objects.filter(pk=run.pk).update(
        dispatches=1, dispatched_at=timezone.now() - timedelta(minutes=3)
    )
    time.sleep(1)
    run.refresh_from_db()
    assert run.status == "pending"

    app.send_task(BEAT[kind.name])  # what Celery beat sends each minute

    done = wait_done(run)
    assert done.status == "succeeded", kind.note(done)
    assert done.dispatches == 2
    if kind.name != "replication":  # an execution's status text is cleared when it succeeds
        assert AGAIN in kind.note(done)


def test_a_run_sent_twice_runs_once(worker) -> None:
    from distribution.tasks import run_retention

    project = Project.objects.create(name="twice", public=False)
    for tag in ("a", "b", "c"):
        push_image("twice/app", tag)
    policy = retention_policy_set(
        project=project, rules=[{"latestPushedK": 2}], schedule="", actor=SYSTEM
    )
    run = RetentionRun.objects.create(policy=policy)

    # The first message and a resend, both queued before the worker claims the run.
    run_retention.delay(run.pk)
    run_retention.delay(run.pk)
    marker = RetentionRun.objects.create(policy=policy, dry_run=True)
    run_retention.delay(marker.pk)  # FIFO on one solo worker: both are consumed before it

    wait_done(marker)
    run.refresh_from_db()
    assert run.status == "succeeded", run.log
    assert (run.retained, run.deleted) == (2, 1)
    assert run.log.count("retention of project twice") == 1
    assert sorted(RetentionRun.objects.values_list("status", flat=True)) == ["succeeded"] * 2


@pytest.mark.django_db
def test_stopping_a_pending_execution_cancels_its_planned_tasks() -> None:
    from replication.services import execution_cancel

    execution = _execution(timezone.now(), total=2)
    for tag in ("a", "b"):
        Task.objects.create(execution=execution, source=f"p/r:{tag}", destination="d")

    assert execution_cancel(execution=execution)

    execution.refresh_from_db()
    assert execution.status == "cancelled" and execution.finished_at is not None
    assert set(execution.tasks.values_list("status", flat=True)) == {"cancelled"}
    assert not execution_cancel(execution=execution)  # ended already
