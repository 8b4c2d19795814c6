"""Tag retention: which tags of a project's repositories a policy keeps, and deleting the rest.

Harbor's semantics (docs/retention.md): a repository is in scope when some
rule's repository glob matches it; within it, the rules rank its tagged
manifests (artifacts, a rule seeing those with a tag its tag glob matches):
one any rule keeps stays with all its tags, every other one loses all its
tags.  Manifests left without tags by the run go too, with their untagged
referrers and index children, unless a kept manifest still needs them (a
child of a kept index, a referrer of a kept subject).  An artifact with an
immutable tag always stays.  Blob bytes are GC's to free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from audit.services import SYSTEM, Actor, audit_record
from jobs.cron import cron_fires, cron_schedule, minute_claim
from jobs.recovery import JobKind, Recovered, job_send, jobs_recover
from projects.models import Project

from .exceptions import RuleInvalid
from .immutability import immutable_tags, short_name
from .models import Manifest, Repository, RetentionPolicy, RetentionRun, RetentionStatus, Tag
from .patterns import PatternInvalid, glob_check, glob_match
from .signals import deleted_artifacts, send_deleted

logger = logging.getLogger(__name__)

# action -> what its number means
RETENTION_ACTIONS = {
    "latestPushedK": "keep the N most recently pushed artifacts",
    "latestPulledN": "keep the N most recently pulled artifacts",
    "nDaysSinceLastPush": "keep artifacts pushed within the last N days",
    "nDaysSinceLastPull": "keep artifacts pulled within the last N days",
    "always": "keep every matching artifact",
}


def retention_rules_check(rules: Any) -> list[dict[str, Any]]:
    """The rules, normalized (``repository``/``tag`` default ``**``); RuleInvalid otherwise."""
    if not isinstance(rules, list):
        raise RuleInvalid("rules: a list of rules")
    normalized = []
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not isinstance(rule, dict):
            raise RuleInvalid(f"{where}: an object like {{'tag': '**', 'latestPushedK': 3}}")
        actions = [key for key in rule if key in RETENTION_ACTIONS]
        unknown = sorted(set(rule) - set(RETENTION_ACTIONS) - {"repository", "tag", "disabled"})
        if unknown or len(actions) != 1:
            raise RuleInvalid(
                f"{where}: exactly one of {sorted(RETENTION_ACTIONS)} besides repository, tag"
                f" and disabled{f'; unknown: {unknown}' if unknown else ''}"
            )
        action = actions[0]
        value = rule[action]
        if action == "always":
            value = True
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RuleInvalid(f"{where}.{action}: a whole number, 0 or more")
        try:
            repository = glob_check(str(rule.get("repository", "**")))
            tag = glob_check(str(rule.get("tag", "**")))
        except PatternInvalid as error:
            raise RuleInvalid(f"{where}: {error}") from None
        normalized.append(
            {
                "repository": repository,
                "tag": tag,
                action: value,
                "disabled": bool(rule.get("disabled", False)),
            }
        )
    return normalized


def retention_policy_set(
    *, project: Project, rules: Any, schedule: str, actor: Actor
) -> RetentionPolicy:
    """Create or replace the project's retention policy (RuleInvalid for a bad rule)."""
    normalized = retention_rules_check(rules)
    schedule = schedule.strip()
    if schedule:
        try:
            cron_schedule(schedule)
        except ValueError as error:
            raise RuleInvalid(
                f"schedule: {error}; use minute hour day month weekday, or empty for manual runs"
            ) from None
    with transaction.atomic():
        policy, _ = RetentionPolicy.objects.update_or_create(
            project=project, defaults={"rules": normalized, "schedule": schedule}
        )
        audit_record(
            actor=actor,
            action="retention",
            resource=f"project:{project.name}",
            detail={"change": "policy", "rules": normalized, "schedule": schedule},
        )
    return policy


@dataclass
class Decision:
    """What a run does in one repository."""

    repository: Repository
    kept: list[Tag] = field(default_factory=list)
    deleted: list[Tag] = field(default_factory=list)
    manifests: list[Manifest] = field(default_factory=list)


@dataclass
class Artifact:
    """A tagged manifest as the rules see it: all its tags, and when it was last pushed and
    pulled by any of them or by digest (the newest of the manifest's and its tags' times)."""

    manifest_id: int
    tags: list[Tag]
    pushed_at: datetime
    pulled_at: datetime | None


def _artifacts(manifests: list[Manifest], tags: list[Tag]) -> list[Artifact]:
    by_id = {m.pk: m for m in manifests}
    grouped: dict[int, list[Tag]] = {}
    for tag in tags:
        grouped.setdefault(tag.manifest_id, []).append(tag)
    artifacts = []
    for manifest_id, its_tags in grouped.items():
        manifest = by_id[manifest_id]
        pulled = [t for t in (manifest.pulled_at, *(t.pulled_at for t in its_tags)) if t]
        artifacts.append(
            Artifact(
                manifest_id=manifest_id,
                tags=its_tags,
                pushed_at=max(manifest.pushed_at, *(t.pushed_at for t in its_tags)),
                pulled_at=max(pulled) if pulled else None,
            )
        )
    return artifacts


def _kept_by(rule: dict[str, Any], artifacts: list[Artifact], now: datetime) -> set[int]:
    """Manifest ids of the artifacts (those a tag of which the rule's pattern matches) that
    one rule keeps."""
    never = datetime.min.replace(tzinfo=now.tzinfo)
    if "always" in rule:
        return {a.manifest_id for a in artifacts}
    if "latestPushedK" in rule:
        newest = sorted(artifacts, key=lambda a: (a.pushed_at, a.manifest_id), reverse=True)
        return {a.manifest_id for a in newest[: rule["latestPushedK"]]}
    if "latestPulledN" in rule:
        # Never pulled ones come last, the most recently pushed first among them.
        newest = sorted(
            artifacts,
            key=lambda a: (a.pulled_at or never, a.pushed_at, a.manifest_id),
            reverse=True,
        )
        return {a.manifest_id for a in newest[: rule["latestPulledN"]]}
    if "nDaysSinceLastPush" in rule:
        since = now - timedelta(days=rule["nDaysSinceLastPush"])
        return {a.manifest_id for a in artifacts if a.pushed_at >= since}
    since = now - timedelta(days=rule["nDaysSinceLastPull"])
    return {a.manifest_id for a in artifacts if a.pulled_at is not None and a.pulled_at >= since}


def retention_decide(
    *, repository: Repository, rules: list[dict[str, Any]], now: datetime
) -> Decision | None:
    """What the rules keep and delete in one repository; None when no rule covers it.

    The rules rank artifacts, as Harbor's do: a tagged manifest is kept with all its tags
    when any rule keeps it, and loses them all otherwise.  Call within the transaction
    that deletes: the repository's tags, then its manifests, are locked (in the order a
    push takes them: its tag, then the manifest), so pushes wait rather than race.
    """
    name = short_name(repository.name)
    rules = [r for r in rules if not r["disabled"] and glob_match(r["repository"], name)]
    if not rules:
        return None
    tags = list(Tag.objects.select_for_update().filter(repository=repository).order_by("name"))
    manifests = list(
        Manifest.objects.select_for_update().filter(repository=repository).order_by("pk")
    )
    artifacts = _artifacts(manifests, tags)
    kept: set[int] = set()
    for rule in rules:
        matching = [a for a in artifacts if any(glob_match(rule["tag"], t.name) for t in a.tags)]
        kept |= _kept_by(rule, matching, now)
    frozen = set(immutable_tags(repository=repository, names=[t.name for t in tags]))
    kept |= {t.manifest_id for t in tags if t.name in frozen}
    decision = Decision(repository)
    for tag in tags:
        (decision.kept if tag.manifest_id in kept else decision.deleted).append(tag)
    decision.manifests = _orphaned(manifests, decision)
    return decision


def _orphaned(manifests: list[Manifest], decision: Decision) -> list[Manifest]:
    """Manifests the deleted tags leave behind, with what only they need, less what is kept."""
    kept_on = {t.manifest_id for t in decision.kept}
    lost_on = {t.manifest_id for t in decision.deleted} - kept_on
    if not lost_on:
        return []
    by_id = {m.pk: m for m in manifests}
    by_digest = {m.digest: m.pk for m in manifests}
    children: dict[int, set[int]] = {m.pk: set() for m in manifests}
    through = Manifest.children.through.objects.filter(from_manifest_id__in=by_id)
    for parent, child in through.values_list("from_manifest_id", "to_manifest_id"):
        children[parent].add(child)
    referrers: dict[int, set[int]] = {m.pk: set() for m in manifests}
    for m in manifests:
        if m.subject_digest in by_digest:
            referrers[by_digest[m.subject_digest]].add(m.pk)
    tagged = {t.manifest_id for t in (*decision.kept, *decision.deleted)}

    def reach(start: set[int], skip_tagged: bool) -> set[int]:
        seen, todo = set(start), list(start)
        while todo:
            current = todo.pop()
            for nxt in children[current] | referrers[current]:
                if nxt in seen or (skip_tagged and nxt in tagged):
                    continue
                seen.add(nxt)
                todo.append(nxt)
        return seen

    # Everything that is not going stays, and holds whatever it refers to or is referred by.
    doomed = reach(lost_on, skip_tagged=True)
    held = reach(set(by_id) - doomed, skip_tagged=False)
    return [by_id[pk] for pk in sorted(doomed - held)]


def retention_start(
    *,
    policy: RetentionPolicy,
    dry_run: bool,
    actor: Actor = SYSTEM,
    trigger: str = "manual",
) -> RetentionRun:
    """Record a pending run of the policy and hand it to a worker once committed.

    The API, the console and the schedule start runs so; the worker's task
    calls ``retention_run_execute``.  Audited as who started it.
    """
    with transaction.atomic():
        run = RetentionRun.objects.create(
            policy=policy,
            dry_run=dry_run,
            trigger=trigger,
            actor=actor.name,
            actor_source=actor.source,
        )
        audit_record(
            actor=actor,
            action="retention",
            resource=f"project:{policy.project.name}",
            detail={"change": "run", "run": run.pk, "dry_run": dry_run, "trigger": trigger},
        )
        transaction.on_commit(lambda: job_send(RETENTION_JOBS, run.pk))
    return run


def _task() -> Any:
    from .tasks import run_retention  # tasks imports this module

    return run_retention


def _refuse(run_id: int, reason: str) -> bool:
    return bool(
        RetentionRun.objects.filter(pk=run_id, status=RetentionStatus.PENDING).update(
            status=RetentionStatus.FAILED,
            finished_at=timezone.now(),
            log=Concat("log", Value(reason + "\n")),
        )
    )


# A pending run's started_at is when it was recorded (the claim sets it again).
RETENTION_JOBS = JobKind(
    model=RetentionRun, name="retention", task=_task, refuse=_refuse, created="started_at"
)


def retention_recover(*, now: datetime | None = None) -> Recovered:
    """Send pending runs whose message may be lost again; fail those no worker took at all
    (the beat check, each minute: see jobs/recovery.py)."""
    return jobs_recover(RETENTION_JOBS, now=now)


def retention_run_execute(
    *, run_id: int, progress: Callable[[str], None] | None = None
) -> RetentionRun | None:
    """Carry out a recorded pending run (the ``distribution.retention_run`` task); idempotent.

    The run is claimed from pending to running by one conditional UPDATE: a
    run delivered twice, or already finished, is left alone.  A failure is
    recorded on the run (not raised).
    """
    now = timezone.now()
    claimed = RetentionRun.objects.filter(pk=run_id, status=RetentionStatus.PENDING).update(
        status=RetentionStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    run = RetentionRun.objects.select_related("policy__project").filter(pk=run_id).first()
    if not claimed or run is None:
        return run
    try:
        _execute(run, Actor(run.actor, run.actor_source), progress)
    except Exception:
        logger.exception("retention run %s failed", run_id)
    return run


def retention_run(
    *,
    policy: RetentionPolicy,
    dry_run: bool,
    actor: Actor = SYSTEM,
    trigger: str = "manual",
    progress: Callable[[str], None] | None = None,
) -> RetentionRun:
    """Apply the policy now, in this process (the ``harborpy retention run`` command).

    Recorded as a RetentionRun like a worker's; a failure is recorded, then raised.
    """
    run = RetentionRun.objects.create(
        policy=policy,
        dry_run=dry_run,
        trigger=trigger,
        status=RetentionStatus.RUNNING,
        actor=actor.name,
        actor_source=actor.source,
    )
    _execute(run, actor, progress)
    return run


_COUNTERS = ["retained", "deleted", "manifests_deleted"]
# A running run not heard from for this long lost its worker (see retention_fail_stalled).
STALL_AFTER = timedelta(minutes=15)


def _execute(run: RetentionRun, actor: Actor, progress: Callable[[str], None] | None) -> None:
    """Apply the run's policy to every repository of its project; the outcome on the row.

    Each repository is decided and deleted in its own transaction, and the
    counters are saved after each, so a run that fails keeps the record of
    what it deleted before.  Each deleted tag and manifest is audited.  A dry
    run decides and reports, and deletes nothing.
    """
    lines = run.log.splitlines()  # a pending run's log may say it was sent again

    def say(line: str) -> None:
        lines.append(line)
        if progress is not None:
            progress(line)

    policy, dry_run = run.policy, run.dry_run
    project = policy.project
    say(f"retention of project {project.name}{' (dry run)' if dry_run else ''}")
    try:
        for repository in Repository.objects.filter(project=project).order_by("name"):
            RetentionRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
            with transaction.atomic():
                decision = retention_decide(
                    repository=repository, rules=policy.rules, now=timezone.now()
                )
                if decision is None:
                    continue
                _report(decision, say)
                if not dry_run:
                    _delete(decision, run, actor)
                run.retained += len(decision.kept)
                run.deleted += len(decision.deleted)
                run.manifests_deleted += len(decision.manifests)
                run.log = "\n".join(lines)
                run.heartbeat_at = timezone.now()
                run.save(update_fields=[*_COUNTERS, "log", "heartbeat_at"])
        run.status = RetentionStatus.SUCCEEDED
    except Exception as error:  # recorded on the run, then re-raised for the caller's log
        say(f"failed: {type(error).__name__}: {error}")
        run.status = RetentionStatus.FAILED
        raise
    finally:
        verb = "would delete" if dry_run else "deleted"
        say(
            f"retained {run.retained} tags; {verb} {run.deleted} tags"
            f" and {run.manifests_deleted} manifests"
        )
        run.finished_at = timezone.now()
        run.log = "\n".join(lines)
        fields = {name: getattr(run, name) for name in [*_COUNTERS, "log", "finished_at"]}
        # Only a run still running takes its outcome: one marked stalled meanwhile (its
        # worker was silent too long) stays failed, with what it did noted.
        if not RetentionRun.objects.filter(pk=run.pk, status=RetentionStatus.RUNNING).update(
            status=run.status, **fields
        ):
            fields["log"] += "\nfinished after it was marked stalled"
            RetentionRun.objects.filter(pk=run.pk).update(**fields)


def _report(decision: Decision, say: Callable[[str], None]) -> None:
    name = decision.repository.name
    for tag in decision.kept:
        say(f"retain {name}:{tag.name}")
    for tag in decision.deleted:
        say(f"delete {name}:{tag.name}")
    for manifest in decision.manifests:
        say(f"delete {name}@{manifest.digest}")


def _delete(decision: Decision, run: RetentionRun, actor: Actor) -> None:
    name = decision.repository.name
    detail = {"by": "retention", "run": run.pk}
    deleted = deleted_artifacts(manifests=decision.manifests, tags=decision.deleted)
    send_deleted(repository_name=name, artifacts=deleted)
    Tag.objects.filter(pk__in=[t.pk for t in decision.deleted]).delete()
    for tag in decision.deleted:
        audit_record(
            actor=actor,
            action="delete",
            resource=f"{name}:{tag.name}",
            detail={"kind": "tag", **detail},
        )
    Manifest.objects.filter(pk__in=[m.pk for m in decision.manifests]).delete()
    for manifest in decision.manifests:
        audit_record(
            actor=actor,
            action="delete",
            resource=f"{name}@{manifest.digest}",
            detail={"kind": "manifest", **detail},
        )


def retention_scheduled(*, now: datetime | None = None) -> list[RetentionRun]:
    """Start a run of every policy whose schedule fires in this minute and has not in it yet.

    Celery beat calls this every minute (``distribution.retention_scheduled``).
    Each policy's minute is claimed with one conditional UPDATE, so two beats,
    or a late and an early tick, cannot run it twice.  The runs are handed to
    workers (``retention_start``), so one slow project does not hold up the others.
    """
    retention_fail_stalled(now=now)
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    local = timezone.localtime(minute)
    runs = []
    for policy in RetentionPolicy.objects.exclude(schedule="").select_related("project"):
        try:
            due = cron_fires(cron_schedule(policy.schedule), local)
        except ValueError:
            continue  # checked when set; a policy from before the check is skipped
        if not due:
            continue
        if not minute_claim(RetentionPolicy.objects.filter(pk=policy.pk), minute):
            continue
        try:
            runs.append(retention_start(policy=policy, dry_run=False, trigger="schedule"))
        except Exception:  # the other policies still start
            logger.exception("scheduled retention of project %s not started", policy.project.name)
    return runs


def retention_fail_stalled(*, now: datetime | None = None) -> int:
    """Mark failed the running runs whose worker has been silent for ``STALL_AFTER`` (it
    died: nothing else will finish them); return how many.  What they deleted stays
    recorded; the next run decides afresh."""
    now = now or timezone.now()
    cutoff = now - STALL_AFTER
    return (
        RetentionRun.objects.filter(status=RetentionStatus.RUNNING)
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
        .update(
            status=RetentionStatus.FAILED,
            finished_at=now,
            log=Concat(
                "log", Value(f"\nstalled: no word from its worker for {STALL_AFTER}; failed")
            ),
        )
    )


def retention_policy_get(*, project: Project) -> RetentionPolicy | None:
    """The project's policy, if it has one."""
    return RetentionPolicy.objects.filter(project=project).select_related("project").first()


def retention_runs(*, project: Project) -> Any:
    """The project's runs, newest first."""
    return RetentionRun.objects.filter(policy__project=project).order_by("-started_at", "-id")


def retention_run_get(*, project: Project, run_id: int) -> RetentionRun | None:
    """One of the project's runs."""
    return retention_runs(project=project).filter(pk=run_id).first()
