"""Executions: record one, hand it to a worker, carry it out task by task, stop it.

A run lists the source's repositories and tags that match the policy's filters
(for push policies with a label filter, only tags whose artifact carries every
label named), records one Task per tag and copies each.  An execution whose
tasks were planned when it was recorded (an event) skips the listing.  A delete
task deletes an artifact (by digest) or a tag at the destination.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from distribution.exceptions import RegistryError
from distribution.manifests import parse_manifest
from distribution.models import Tag
from distribution.patterns import PatternInvalid, glob_match
from jobs.recovery import JobKind, job_send

from ..client import DeleteUnsupported, ReplicationError
from ..models import Direction, Execution, Operation, ReplicationPolicy, Status, Task
from .copier import Copier, Heartbeat, retrying
from .sides import (
    Destination,
    LocalDestination,
    LocalSource,
    RemoteDestination,
    RemoteSource,
    Source,
    client_for,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


class PolicyDisabled(ReplicationError):
    """A disabled policy was asked to run."""


def execution_create(*, policy: ReplicationPolicy, trigger: str = "manual") -> Execution:
    """Record a pending execution of ``policy`` (run it with execution_run).

    A disabled policy is not run: PolicyDisabled.
    """
    if not policy.enabled:
        raise PolicyDisabled(f"replication policy {policy.name!r} is disabled")
    return Execution.objects.create(policy=policy, trigger=trigger)


def execution_start(
    *, policy: ReplicationPolicy, trigger: str = "manual", tasks: Iterable[Task] = ()
) -> Execution:
    """Record an execution (with ``tasks`` planned already, if given) and hand it to a
    worker once the transaction commits."""
    with transaction.atomic():
        execution = execution_create(policy=policy, trigger=trigger)
        planned = list(tasks)
        if planned:
            for task in planned:
                task.execution = execution
            Task.objects.bulk_create(planned)
            execution.total = len(planned)
            execution.save(update_fields=["total"])
        transaction.on_commit(partial(job_send, EXECUTION_JOBS, execution.pk))
    return execution


def _task() -> Any:
    from ..tasks import run_execution  # the task module imports this one

    return run_execution


def _refuse(execution_id: int, reason: str) -> bool:
    """Fail a pending execution nobody will carry out, and its planned tasks, as a stall does."""
    now = timezone.now()
    with transaction.atomic():
        failed = Execution.objects.filter(pk=execution_id, status=Status.PENDING).update(
            status=Status.FAILED, finished_at=now, error=Concat("error", Value(reason))
        )
        if failed:
            tasks_fail_unfinished(execution_id=execution_id, error=reason, now=now)
    return bool(failed)


# Execution.error is its status text (Harbor's status_text): the resend lines go there.
EXECUTION_JOBS = JobKind(
    model=Execution, name="replication", task=_task, refuse=_refuse, note="error"
)


def tasks_fail_unfinished(
    *, execution_id: int, error: str, now: datetime, status: str = Status.FAILED
) -> None:
    """Fail the pending and running tasks of an execution given up on (stalled, lost, not
    taken by the broker), or end them with another ``status`` (a cancelled execution
    whose worker stopped), and count its tasks again.  Call within its transaction."""
    tasks = Task.objects.filter(execution_id=execution_id)
    tasks.filter(status__in=[Status.PENDING, Status.RUNNING]).update(
        status=status, error=error, finished_at=now
    )
    Execution.objects.filter(pk=execution_id).update(
        total=tasks.count(),
        succeeded=tasks.filter(status=Status.SUCCEEDED).count(),
        failed=tasks.filter(status=Status.FAILED).count(),
        skipped=tasks.filter(status=Status.SKIPPED).count(),
    )


def destination_name(policy: ReplicationPolicy, source: str) -> str:
    """The source repository's name under the policy's destination namespace, if any."""
    if not policy.destination_namespace:
        return source
    rest = source.split("/", 1)[1] if "/" in source else source
    return f"{policy.destination_namespace.strip('/')}/{rest}"


def _matches(pattern: str, name: str) -> bool:
    """Doublestar globs as elsewhere: ``*`` within a path segment, ``**`` across them."""
    return not pattern or glob_match(pattern, name)


def labelled_tags(repository: str, tags: list[str], labels: list[str]) -> set[str]:
    """Those of ``tags`` whose artifact carries every one of ``labels`` (local repository)."""
    found = Tag.objects.filter(repository__name=repository, name__in=tags)
    for label in labels:  # one join per label: all of them, not any
        found = found.filter(manifest__label_links__label__name=label)
    return set(found.values_list("name", flat=True))


def execution_run(*, execution_id: int, progress: Progress | None = None) -> Execution:
    """Carry out a pending execution; a second call on the same execution does nothing."""
    say = progress or (lambda line: None)
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update()
            .select_related("policy__endpoint")
            .get(pk=execution_id)
        )
        if execution.status != Status.PENDING:
            return execution
        execution.status = Status.RUNNING
        execution.started_at = execution.heartbeat_at = timezone.now()
        execution.save(update_fields=["status", "started_at", "heartbeat_at"])
    heartbeat = Heartbeat(execution.pk)
    policy = execution.policy
    try:
        client = client_for(policy.endpoint)
    except ReplicationError as error:
        return _finish(execution, error=str(error), say=say)
    source: Source
    destination: Destination
    if policy.direction == Direction.PUSH:
        source, destination = LocalSource(), RemoteDestination(client)
    else:
        source, destination = RemoteSource(client), LocalDestination()
    try:
        tasks = list(execution.tasks.order_by("pk"))  # planned when recorded (an event)
        if not tasks:
            tasks = _plan(execution, policy, source, heartbeat)
    except (ReplicationError, RegistryError, PatternInvalid) as error:
        return _finish(execution, error=f"listing the source failed: {error}", say=say)
    except Exception as error:  # a bug: recorded, so that the execution does not stay running
        logger.exception("replication execution %s failed", execution.pk)
        return _finish(execution, error=f"{type(error).__name__}: {error}", say=say)
    say(f"execution {execution.pk}: {len(tasks)} task(s)")
    for task in tasks:
        state = Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        if state == Status.CANCELLED:  # _finish cancels the tasks not started
            return _finish(execution, error="", say=say)
        if state != Status.RUNNING:  # marked stalled meanwhile: a new execution may run
            execution.refresh_from_db()
            return execution
        heartbeat.beat(now=True)
        if task.status != Status.PENDING:
            continue
        _run_task(task, policy, source, destination, heartbeat)
        verb = "" if task.operation == Operation.COPY else "delete "
        say(f"{task.status}: {verb}{task.source} -> {task.destination} {task.error}".rstrip())
    return _finish(execution, error="", say=say)


def execution_cancel(*, execution: Execution) -> bool:
    """Stop an execution: a pending one never runs, a running one stops before its next task.

    The task being copied is finished first.  A pending execution's planned tasks (an
    event's) are cancelled with it: no worker will.  False when it had ended already.
    """
    now = timezone.now()
    with transaction.atomic():
        if Execution.objects.filter(pk=execution.pk, status=Status.PENDING).update(
            status=Status.CANCELLED, finished_at=now
        ):
            Task.objects.filter(execution_id=execution.pk, status=Status.PENDING).update(
                status=Status.CANCELLED, finished_at=now
            )
            return True
    return bool(
        Execution.objects.filter(pk=execution.pk, status=Status.RUNNING).update(
            status=Status.CANCELLED
        )
    )


def _plan(
    execution: Execution, policy: ReplicationPolicy, source: Source, heartbeat: Heartbeat
) -> list[Task]:
    tasks = []
    labels = list(policy.label_filter) if policy.direction == Direction.PUSH else []
    for repository in retrying("catalog", source.repositories):
        heartbeat.beat()
        if not _matches(policy.repository_filter, repository):
            continue
        target = destination_name(policy, repository)
        tags: list[str] = retrying(f"tags of {repository}", partial(source.tags, repository))
        tags = [tag for tag in tags if _matches(policy.tag_filter, tag)]
        if labels and tags:
            carrying = labelled_tags(repository, tags, labels)
            tags = [tag for tag in tags if tag in carrying]
        for tag in tags:
            tasks.append(
                Task(
                    execution=execution, source=f"{repository}:{tag}", destination=f"{target}:{tag}"
                )
            )
    Task.objects.bulk_create(tasks)
    Execution.objects.filter(pk=execution.pk).update(total=len(tasks))
    return list(execution.tasks.order_by("pk"))


def _run_task(
    task: Task,
    policy: ReplicationPolicy,
    source: Source,
    destination: Destination,
    heartbeat: Heartbeat,
) -> None:
    """Carry out one task and record its outcome, unless the task was ended meanwhile.

    Both writes are conditional: a stall mark (executions_fail_stalled) may have failed
    the task while this worker was slow, and the execution's counts were made from it;
    a late outcome must not overwrite it.
    """
    task.status, task.started_at = Status.RUNNING, timezone.now()
    if not Task.objects.filter(pk=task.pk, status=Status.PENDING).update(
        status=Status.RUNNING, started_at=task.started_at
    ):
        task.refresh_from_db()
        return
    copier = None
    try:
        if task.operation == Operation.DELETE:
            _delete(task, destination)
        else:
            # name:tag, or name@digest (a referrer pushed by digest, from an event)
            separator = "@" if "@" in task.source else ":"
            repository, reference = task.source.rsplit(separator, 1)
            target = task.destination.rsplit(separator, 1)[0]
            copier = Copier(source, destination, repository, target, heartbeat)
            _copy(task, policy, copier, reference)
    except (ReplicationError, RegistryError) as error:
        task.status, task.error = Status.FAILED, str(error) or type(error).__name__
    except Exception as error:  # a bug or a storage failure: recorded, the others go on
        logger.exception("replication task %s failed", task.pk)
        task.status, task.error = Status.FAILED, f"{type(error).__name__}: {error}"
    task.bytes = copier.bytes if copier is not None else 0
    task.finished_at = timezone.now()
    fields = ["status", "error", "digest", "bytes", "finished_at"]
    if not Task.objects.filter(pk=task.pk, status=Status.RUNNING).update(
        **{f: getattr(task, f) for f in fields}
    ):
        task.refresh_from_db()


def _copy(task: Task, policy: ReplicationPolicy, copier: Copier, tag: str) -> None:
    source, destination = copier.source, copier.destination
    body, media_type = retrying(task.source, lambda: source.manifest(copier.repository, tag))
    task.digest = parse_manifest(body, media_type).digest
    existing = (
        None
        if policy.override
        else retrying(task.destination, lambda: destination.tag_digest(copier.target, tag))
    )
    if existing is not None and existing != task.digest:
        task.status = Status.SKIPPED
        task.error = f"the destination has {existing} under this tag and override is off"
    else:
        copier.manifest(tag, body, media_type)
        task.status = Status.SUCCEEDED


def _delete(task: Task, destination: Destination) -> None:
    """Delete at the destination what was deleted here: ``name@digest`` or ``name:tag``.

    Not being there counts as done.  A tag is deleted only while it still names the
    artifact deleted here; a destination that cannot delete a tag alone (Docker's
    registry) has the artifact deleted by digest instead, if nothing here is tagged
    with it any more.
    """
    task.status = Status.SUCCEEDED
    if "@" in task.destination:
        target, digest = task.destination.rsplit("@", 1)
        if not retrying(task.destination, lambda: destination.delete(target, digest)):
            task.error = "not at the destination: nothing to delete"
        return
    target, tag = task.destination.rsplit(":", 1)
    current = retrying(task.destination, lambda: destination.tag_digest(target, tag))
    if current is None:
        task.error = "not at the destination: nothing to delete"
        return
    if task.digest and current != task.digest:
        task.status = Status.SKIPPED
        task.error = f"the destination's tag names {current}, not the artifact deleted here"
        return
    try:
        retrying(task.destination, lambda: destination.delete(target, tag))
    except DeleteUnsupported:
        repository = task.source.rsplit(":", 1)[0]
        still_tagged = Tag.objects.filter(
            repository__name=repository, manifest__digest=current
        ).exists()
        if still_tagged:
            raise DeleteUnsupported(
                f"the destination cannot delete the tag {tag} alone, and the artifact "
                f"{current} keeps other tags here",
                405,
            ) from None
        retrying(task.destination, lambda: destination.delete(target, current))


def _finish(execution: Execution, *, error: str, say: Progress) -> Execution:
    """Record how the execution ended, with its counts.

    Cancelled meanwhile (execution_cancel while the last task ran, or before the listing
    was through): it stays cancelled, and its tasks not started are cancelled too.  Marked
    stalled meanwhile (failed): the mark stays, the execution was given up on and may be
    running again anew.  The row is locked, so a cancel cannot land between the read and
    the write: it waits and then finds the execution ended.
    """
    now = timezone.now()
    tasks = execution.tasks.all()
    with transaction.atomic():
        state = (
            Execution.objects.select_for_update()
            .filter(pk=execution.pk)
            .values_list("status", flat=True)
            .first()
        )
        if state not in (Status.RUNNING, Status.CANCELLED):
            execution.refresh_from_db()
            return execution
        if state == Status.CANCELLED:
            tasks.filter(status=Status.PENDING).update(status=Status.CANCELLED, finished_at=now)
        execution.succeeded = tasks.filter(status=Status.SUCCEEDED).count()
        execution.failed = tasks.filter(status=Status.FAILED).count()
        execution.skipped = tasks.filter(status=Status.SKIPPED).count()
        execution.total = tasks.count()
        execution.bytes = sum(tasks.values_list("bytes", flat=True))
        execution.error = error
        if state == Status.CANCELLED:
            execution.status = Status.CANCELLED
        else:
            execution.status = Status.FAILED if error or execution.failed else Status.SUCCEEDED
        execution.finished_at = now
        fields = ["succeeded", "failed", "skipped", "total", "bytes", "error", "status"]
        Execution.objects.filter(pk=execution.pk).update(
            finished_at=now, **{f: getattr(execution, f) for f in fields}
        )
    say(
        f"execution {execution.pk} {execution.status}: {execution.succeeded} succeeded, "
        f"{execution.failed} failed, {execution.skipped} skipped, {execution.bytes} bytes"
        + (f"; {error}" if error else "")
    )
    return execution
