"""What starts executions besides a person: schedules and registry events; and stalls.

Celery beat calls ``replication.scheduled`` every minute: it marks executions
whose worker stopped beating as failed (``executions_fail_stalled``), then starts
the scheduled policies due in this minute (``replication_scheduled``).  The
registry's ``artifact_pushed``, ``referrer_pushed`` and ``artifacts_deleted`` signals
reach ``replication_pushed``, ``replication_referrer_pushed`` and
``replication_deleted``, which start an execution,
its tasks planned already, for each enabled event-based push policy that matches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from distribution.models import ArtifactLabel, Manifest, Tag
from distribution.signals import DeletedArtifact
from jobs.cron import cron_fires, cron_schedule, minute_claim
from jobs.recovery import Recovered, jobs_recover

from ..models import (
    Direction,
    Execution,
    Operation,
    ReplicationPolicy,
    Status,
    Task,
    Trigger,
)
from .executions import (
    EXECUTION_JOBS,
    _matches,
    destination_name,
    execution_start,
    tasks_fail_unfinished,
)

logger = logging.getLogger(__name__)


# --- schedules -----------------------------------------------------------------------------


def replication_scheduled(*, now: datetime | None = None) -> list[Execution]:
    """Start every enabled scheduled policy whose cron fires in this minute, once a minute.

    Each policy's minute is claimed with one conditional UPDATE, so two beats, or a
    late and an early tick, cannot start it twice.
    """
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    local = timezone.localtime(minute)
    started = []
    due = ReplicationPolicy.objects.filter(enabled=True, trigger=Trigger.SCHEDULED).exclude(
        schedule=""
    )
    for policy in due.select_related("endpoint").order_by("pk"):
        try:
            if not cron_fires(cron_schedule(policy.schedule), local):
                continue
        except ValueError:
            continue  # checked when set; one from before the check is skipped
        if not minute_claim(ReplicationPolicy.objects.filter(pk=policy.pk), minute):
            continue
        try:
            started.append(execution_start(policy=policy, trigger=Trigger.SCHEDULED))
        except Exception:  # the other policies still start
            logger.exception("scheduled replication of policy %s failed to start", policy.name)
    return started


def executions_fail_stalled(
    *, now: datetime | None = None, seconds: int | None = None
) -> list[Execution]:
    """Mark running executions whose worker has not written a heartbeat for ``seconds``
    (HARBORPY_REPLICATION_STALL_SECONDS) as failed, with their unfinished tasks.

    The policy can then run again as a new execution.  A worker that was only slow
    stops before its next task and leaves the mark as it is.  An execution cancelled
    while it ran whose worker stopped too never got its end written: it ends now,
    cancelled, and so do its unfinished tasks.
    """
    moment = now or timezone.now()
    limit = seconds if seconds is not None else settings.HARBORPY_REPLICATION_STALL_SECONDS
    cutoff = moment - timedelta(seconds=limit)
    stalled = (
        Execution.objects.filter(
            Q(status=Status.RUNNING) | Q(status=Status.CANCELLED, finished_at__isnull=True)
        )
        .annotate(last=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(last__lt=cutoff)
    )
    marked: list[Execution] = []
    for execution in stalled:
        since = timezone.localtime(execution.last).isoformat(timespec="seconds")
        error = f"stalled: no heartbeat from its worker since {since}"
        # Cancelled: stays so; running: failed.  Either way the row must still be as read.
        status = Status.FAILED if execution.status == Status.RUNNING else Status.CANCELLED
        with transaction.atomic():
            updated = (
                Execution.objects.filter(
                    pk=execution.pk, status=execution.status, finished_at__isnull=True
                )
                .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff))
                .update(status=status, error=error, finished_at=moment)
            )
            if not updated:
                continue
            tasks_fail_unfinished(execution_id=execution.pk, error=error, now=moment, status=status)
        logger.warning("replication execution %s: %s", execution.pk, error)
        execution.refresh_from_db()
        marked.append(execution)
    return marked


def executions_recover(*, now: datetime | None = None) -> Recovered:
    """Send pending executions whose message may be lost again; fail those no worker took
    at all, with their tasks (jobs/recovery.py)."""
    return jobs_recover(EXECUTION_JOBS, now=now)


# --- events --------------------------------------------------------------------------------


def _event_policies(*, deletion: bool = False) -> list[ReplicationPolicy]:
    """Enabled event-based push policies (one cheap query; usually none)."""
    policies = ReplicationPolicy.objects.filter(
        enabled=True, trigger=Trigger.EVENT_BASED, direction=Direction.PUSH
    )
    if deletion:
        policies = policies.filter(replicate_deletion=True)
    return list(policies.select_related("endpoint").order_by("pk"))


def replication_pushed(*, repository_name: str, tag: str, digest: str) -> list[Execution]:
    """Start, for each event-based push policy that takes it, an execution copying this tag."""
    policies = _event_policies()
    if not policies:
        return []
    labels: list[set[str]] = []  # read once, if a policy filters on labels

    def carried() -> set[str]:
        if not labels:
            found = ArtifactLabel.objects.filter(
                manifest__repository__name=repository_name, manifest__digest=digest
            )
            labels.append(set(found.values_list("label__name", flat=True)))
        return labels[0]

    def plan(policy: ReplicationPolicy) -> list[Task]:
        if not (
            _matches(policy.repository_filter, repository_name) and _matches(policy.tag_filter, tag)
        ):
            return []
        if policy.label_filter and not set(policy.label_filter) <= carried():
            return []
        target = destination_name(policy, repository_name)
        return [
            Task(source=f"{repository_name}:{tag}", destination=f"{target}:{tag}", digest=digest)
        ]

    return _start_each(policies, plan)


def _subject_tags(repository_name: str, digest: str) -> tuple[set[str], set[str]]:
    """The tags and labels a referrer is judged by: those of its subject, or of the subject's
    subject (a signature of an SBOM), and of the indexes holding it (a signature of one
    platform's manifest), going up a few steps until something is tagged."""
    tags: set[str] = set()
    labels: set[str] = set()
    for _ in range(8):  # a chain of referrers is short; a loop in it must not hang the push
        manifest = (
            Manifest.objects.filter(repository__name=repository_name, digest=digest)
            .only("pk", "subject_digest")
            .first()
        )
        if manifest is None:
            break
        holders = Manifest.objects.filter(Q(pk=manifest.pk) | Q(children=manifest))
        tags.update(Tag.objects.filter(manifest__in=holders).values_list("name", flat=True))
        if tags:
            labels.update(
                ArtifactLabel.objects.filter(manifest__in=holders).values_list(
                    "label__name", flat=True
                )
            )
            break
        if not manifest.subject_digest:
            break
        digest = manifest.subject_digest
    return tags, labels


def replication_referrer_pushed(
    *, repository_name: str, digest: str, subject_digest: str
) -> list[Execution]:
    """Start, for each event-based push policy that takes the referrer's subject, an
    execution copying the referrer (pushed by digest: no tag event announces it).

    The subject's tags stand for the referrer's in the tag filter (an untagged subject
    is taken only by a filter that takes every tag) and its labels in the label filter.
    """
    policies = _event_policies()
    if not policies:
        return []
    tags, labels = _subject_tags(repository_name, subject_digest)

    def plan(policy: ReplicationPolicy) -> list[Task]:
        if not _matches(policy.repository_filter, repository_name):
            return []
        if tags:
            if not any(_matches(policy.tag_filter, tag) for tag in tags):
                return []
        elif policy.tag_filter not in ("", "*", "**"):
            return []
        if not set(policy.label_filter) <= labels:
            return []
        target = destination_name(policy, repository_name)
        return [
            Task(
                source=f"{repository_name}@{digest}",
                destination=f"{target}@{digest}",
                digest=digest,
            )
        ]

    return _start_each(policies, plan)


def replication_deleted(
    *, repository_name: str, artifacts: list[DeletedArtifact]
) -> list[Execution]:
    """Start, for each event-based push policy replicating deletion that takes any of these
    artifacts, an execution deleting them at its destination."""

    def plan(policy: ReplicationPolicy) -> list[Task]:
        if not _matches(policy.repository_filter, repository_name):
            return []
        target = destination_name(policy, repository_name)
        tasks = []
        for artifact in artifacts:
            if not set(policy.label_filter) <= set(artifact.labels):
                continue
            tags = [tag for tag in artifact.tags if _matches(policy.tag_filter, tag)]
            # An untagged artifact is taken only by a filter that takes every tag.
            untagged_ok = not artifact.tags and policy.tag_filter in ("*", "**")
            if artifact.gone and (tags or untagged_ok):
                tasks.append(
                    Task(
                        operation=Operation.DELETE,
                        source=f"{repository_name}@{artifact.digest}",
                        destination=f"{target}@{artifact.digest}",
                        digest=artifact.digest,
                    )
                )
            elif not artifact.gone:
                tasks += [
                    Task(
                        operation=Operation.DELETE,
                        source=f"{repository_name}:{tag}",
                        destination=f"{target}:{tag}",
                        digest=artifact.digest,
                    )
                    for tag in tags
                ]
        return tasks

    return _start_each(_event_policies(deletion=True), plan)


def _start_each(
    policies: list[ReplicationPolicy], plan: Callable[[ReplicationPolicy], list[Task]]
) -> list[Execution]:
    """An execution of each policy with the tasks ``plan`` gives it (none: no execution).

    One policy's trouble (a filter that cannot be read, a database error) is logged
    and does not keep the others from starting.
    """
    started = []
    for policy in policies:
        try:
            tasks = plan(policy)
            if tasks:
                started.append(
                    execution_start(policy=policy, trigger=Trigger.EVENT_BASED, tasks=tasks)
                )
        except Exception:
            logger.exception("event-based replication of policy %s failed", policy.name)
    return started


def on_artifact_pushed(
    sender: Any, *, repository_name: str, tag: str, digest: str, **_: Any
) -> None:
    """Receiver of distribution's ``artifact_pushed``: never lets an error reach the push."""
    try:
        replication_pushed(repository_name=repository_name, tag=tag, digest=digest)
    except Exception:
        logger.exception("event-based replication of %s:%s failed", repository_name, tag)


def on_referrer_pushed(
    sender: Any, *, repository_name: str, digest: str, subject_digest: str, **_: Any
) -> None:
    """Receiver of distribution's ``referrer_pushed``: never lets an error reach the push."""
    try:
        replication_referrer_pushed(
            repository_name=repository_name, digest=digest, subject_digest=subject_digest
        )
    except Exception:
        logger.exception("event-based replication of %s@%s failed", repository_name, digest)


def on_artifacts_deleted(
    sender: Any, *, repository_name: str, artifacts: list[DeletedArtifact], **_: Any
) -> None:
    """Receiver of distribution's ``artifacts_deleted``: never lets an error reach the delete."""
    try:
        replication_deleted(repository_name=repository_name, artifacts=artifacts)
    except Exception:
        logger.exception("deletion replication in %s failed", repository_name)
