"""Audit log rotation, the services: what a purge removes, and that the chain still verifies.

Verification must pass after every committed purge batch (all actions, some
actions, repeated purges that merge earlier gaps) and must still fail when an
entry is deleted or edited without a purge, or the purge records are edited.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.exceptions import PurgeBusy, PurgeInvalid
from audit.models import (
    ACTIONS,
    PURGE_RESOURCE,
    AuditEntry,
    AuditGap,
    AuditPurgeRun,
    PurgeStatus,
)
from audit.purge import audit_purge_batch, audit_purge_count, gaps_digest
from audit.rotation import audit_purge_run, audit_purge_run_execute, audit_purge_start
from audit.schedule import audit_purge_schedule_get, audit_purge_schedule_set, audit_purge_scheduled
from audit.selectors import audit_verify
from audit.services import SYSTEM, Actor, Event, _append

ROOT = Path(__file__).resolve().parents[2]
ADMIN = Actor("admin", "127.0.0.1")
pytestmark = pytest.mark.django_db


def log(*rows: tuple[str, int]) -> list[AuditEntry]:
    """Append entries (action, age in hours), oldest first as given; return them."""
    now = timezone.now()
    _append(
        [
            Event("alice", action, f"lib/app:{i}", "10.0.0.1", {"i": i}, now - timedelta(hours=age))
            for i, (action, age) in enumerate(rows)
        ]
    )
    return list(AuditEntry.objects.order_by("id"))


def kept(action: str | None = None) -> list[str]:
    entries = AuditEntry.objects.exclude(action="purge").order_by("id")
    if action:
        entries = entries.filter(action=action)
    return [e.resource for e in entries]


def intact(purged: int | None = None) -> None:
    check = audit_verify()
    assert check.intact, (check.reason, check.broken_at)
    if purged is not None:
        assert check.purged == purged


def test_a_purge_by_age_removes_the_old_entries_and_the_chain_verifies() -> None:
    log(*[("push", 50)] * 4, *[("pull", 30)] * 3, ("push", 2), ("login", 1))
    run = audit_purge_run(retention_hour=24, actor=ADMIN)
    assert (run.status, run.deleted, run.dry_run) == (PurgeStatus.SUCCEEDED, 7, False)
    assert kept() == ["lib/app:7", "lib/app:8"]
    intact(purged=7)
    # The purge is in the log itself: who started it, and the batch that removed the entries.
    start, batch = AuditEntry.objects.filter(action="purge").order_by("id")
    assert (start.actor, start.resource, start.detail["retention_hour"]) == (
        "admin",
        "system:purgeaudit",
        24,
    )
    assert (batch.actor, batch.resource, batch.detail["deleted"]) == ("admin", PURGE_RESOURCE, 7)
    assert batch.detail["run"] == run.pk and batch.detail["gaps"] == 1
    assert "deleted 7 entries" in run.log


def test_a_purge_of_some_actions_leaves_the_others_and_the_chain_verifies() -> None:
    rows = [("push", 40), ("pull", 40), ("pull", 39), ("login", 38), ("pull", 37), ("push", 36)]
    log(*rows, ("pull", 1))
    run = audit_purge_run(retention_hour=24, operations="pull", actor=ADMIN)
    assert run.deleted == 3 and run.operations == ["pull"]
    assert kept() == ["lib/app:0", "lib/app:3", "lib/app:5", "lib/app:6"]
    assert AuditGap.objects.count() == 2  # two stretches of pulls between kept entries
    intact(purged=3)

    run = audit_purge_run(retention_hour=24, operations=["login", "push"], actor=ADMIN)
    assert run.deleted == 3 and kept() == ["lib/app:6"]
    # The second purge took the first one's gaps into its own: one gap, from the start.
    assert list(AuditGap.objects.values_list("count", flat=True)) == [6]
    intact(purged=6)


def test_a_dry_run_counts_and_changes_nothing() -> None:
    before = [(e.pk, e.hash) for e in log(*[("pull", 30)] * 5, ("push", 30), ("push", 1))]
    assert audit_purge_count(cutoff=timezone.now() - timedelta(hours=24)) == 6
    run = audit_purge_run(retention_hour=24, operations="pull", dry_run=True, actor=ADMIN)
    assert (run.status, run.deleted) == (PurgeStatus.SUCCEEDED, 5)
    assert "would delete 5 entries" in run.log
    after = [(e.pk, e.hash) for e in AuditEntry.objects.order_by("id")]
    assert after[: len(before)] == before, "every entry is still there"
    assert [e.resource for e in AuditEntry.objects.filter(pk__gt=before[-1][0])] == [
        "system:purgeaudit"  # only who asked for the dry run is recorded
    ]
    assert not AuditGap.objects.exists()
    intact(purged=0)


def test_batches_are_each_documented_and_the_chain_verifies_after_every_one() -> None:
    log(*[("pull" if i % 3 else "push", 48) for i in range(20)], ("pull", 0))
    cutoff = timezone.now() - timedelta(hours=24)
    sizes = []
    while batch := audit_purge_batch(
        cutoff=cutoff, operations=["pull"], actor=SYSTEM, batch_size=4
    ):
        sizes.append(batch.deleted)
        intact()  # between batches too: each commit leaves a verifiable chain
        # The digest each batch states incrementally is the whole table's.
        newest = AuditEntry.objects.filter(resource=PURGE_RESOURCE).latest("id")
        assert newest.detail["gaps_digest"] == gaps_digest(AuditGap.objects.all())
        assert newest.detail["gaps"] == AuditGap.objects.count()
    assert sizes == [4, 4, 4, 1]
    batches = AuditEntry.objects.filter(resource=PURGE_RESOURCE)
    assert [b.detail["deleted"] for b in batches.order_by("id")] == sizes
    assert kept("pull") == ["lib/app:20"] and len(kept("push")) == 7
    intact(purged=13)


def test_a_run_in_batches_records_its_progress(settings) -> None:
    log(*[("pull", 48)] * 7)
    lines: list[str] = []
    run = audit_purge_run(retention_hour=1, actor=ADMIN, progress=lines.append, batch_size=3)
    assert run.deleted == 7
    assert [line for line in lines if line.startswith("batch")] == [
        "batch: 3 entries deleted, 3 so far",
        "batch: 3 entries deleted, 6 so far",
        "batch: 1 entries deleted, 7 so far",
    ]
    assert lines[-1] == "deleted 7 entries" and run.log.splitlines() == lines


def test_everything_can_go_even_the_newest_and_earlier_purge_records() -> None:
    log(("push", 10), ("pull", 5))
    audit_purge_run(retention_hour=6, actor=ADMIN)
    intact(purged=1)
    run = audit_purge_run(retention_hour=0, actor=ADMIN)
    # The pull, the first run's records and the second run's own start record.
    assert run.deleted == 4
    assert list(AuditEntry.objects.values_list("resource", flat=True)) == [PURGE_RESOURCE]
    intact(purged=5)


def test_random_purges_always_verify() -> None:
    rng = random.Random(7)
    actions = ["push", "pull", "pull", "login", "delete"]
    log(*[(rng.choice(actions), rng.randint(0, 100)) for _ in range(300)])
    for _ in range(6):
        hours = rng.randint(0, 100)
        operations = rng.sample(["push", "pull", "login", "delete", "purge"], rng.randint(0, 3))
        expected = audit_purge_count(
            cutoff=timezone.now() - timedelta(hours=hours), operations=operations
        )
        run = audit_purge_run(
            retention_hour=hours,
            operations=operations,
            actor=ADMIN,
            batch_size=rng.randint(1, 40),
        )
        assert run.status == PurgeStatus.SUCCEEDED, run.log
        assert run.deleted >= expected  # its own start record may go too, with 0 hours
        intact()
        newest = AuditEntry.objects.filter(resource=PURGE_RESOURCE).order_by("id").last()
        if newest is not None:
            assert newest.detail["gaps_digest"] == gaps_digest(AuditGap.objects.all())
        # No more gap rows than kept entries (plus the one at the start): the table stays small.
        assert AuditGap.objects.count() <= AuditEntry.objects.count() + 1
    # Every entry removed is accounted for in the gaps crossed, however they were merged.
    assert audit_verify().purged == sum(AuditPurgeRun.objects.values_list("deleted", flat=True))


# Tampering: what a purge must not make invisible.


@pytest.fixture
def purged_log() -> list[AuditEntry]:
    """A log where a purge of pulls left gaps between kept pushes; the entries kept."""
    log(("push", 40), ("pull", 40), ("push", 39), ("pull", 38), ("pull", 38), ("push", 37))
    log(("push", 1), ("pull", 1))
    audit_purge_run(retention_hour=24, operations="pull", actor=ADMIN)
    intact(purged=3)
    return list(AuditEntry.objects.order_by("id"))


def test_deleting_a_kept_entry_after_a_purge_is_found(purged_log) -> None:
    first, second = purged_log[0], purged_log[1]
    AuditEntry.objects.filter(pk=second.pk).delete()  # a push beside a documented gap
    check = audit_verify()
    assert not check.intact and check.broken_at.pk == purged_log[2].pk
    assert "no purge records" in check.reason
    AuditEntry.objects.filter(pk=first.pk).delete()
    assert not audit_verify().intact


def test_deleting_a_newer_entry_without_a_purge_is_found(purged_log) -> None:
    recent = AuditEntry.objects.get(action="pull")  # not old enough: kept
    AuditEntry.objects.filter(pk=recent.pk).delete()
    check = audit_verify()
    assert not check.intact and check.broken_at.pk > recent.pk and "removed" in check.reason


def test_editing_an_entry_after_a_purge_is_found(purged_log) -> None:
    AuditEntry.objects.filter(pk=purged_log[1].pk).update(actor="mallory")
    check = audit_verify()
    assert check.broken_at.pk == purged_log[1].pk and "changed" in check.reason


def test_editing_the_purge_record_is_found(purged_log) -> None:
    batch = AuditEntry.objects.get(resource=PURGE_RESOURCE)
    AuditEntry.objects.filter(pk=batch.pk).update(detail={**batch.detail, "deleted": 1})
    assert audit_verify().broken_at.pk == batch.pk


@pytest.mark.parametrize("change", ["count", "delete", "add", "widen"])
def test_changing_the_gap_rows_is_found(purged_log, change: str) -> None:
    gap = AuditGap.objects.order_by("first_id").first()
    if change == "count":
        AuditGap.objects.filter(pk=gap.pk).update(count=gap.count + 100)
    elif change == "delete":
        gap.delete()
    elif change == "widen":
        AuditGap.objects.filter(pk=gap.pk).update(last_id=gap.last_id + 1)
    else:
        # Hide the deletion of a kept push behind a made-up gap row.
        victim = purged_log[2]
        nxt = purged_log[3]
        AuditEntry.objects.filter(pk=victim.pk).delete()
        before = AuditGap.objects.get(hash_after=victim.previous_hash)
        AuditGap.objects.filter(pk=before.pk).delete()
        AuditGap.objects.create(
            hash_before=before.hash_before,
            hash_after=nxt.previous_hash,
            first_id=before.first_id,
            last_id=victim.pk,
            count=before.count + 1,
        )
    check = audit_verify()
    assert not check.intact, change


# Runs: one at a time, claimed once.


def test_a_second_start_is_refused_while_one_is_active() -> None:
    run = audit_purge_start(retention_hour=24, actor=ADMIN)
    assert run.status == PurgeStatus.PENDING
    with pytest.raises(PurgeBusy):
        audit_purge_start(retention_hour=1, actor=ADMIN)
    with pytest.raises(PurgeBusy):
        audit_purge_run(retention_hour=1, actor=ADMIN)
    assert AuditPurgeRun.objects.count() == 1


def test_a_lost_or_stalled_run_does_not_block_the_next() -> None:
    lost = audit_purge_start(retention_hour=24, actor=ADMIN)
    AuditPurgeRun.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=2))
    stalled = audit_purge_start(retention_hour=24, actor=ADMIN)
    AuditPurgeRun.objects.filter(pk=stalled.pk).update(
        status=PurgeStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=20)
    )
    audit_purge_start(retention_hour=24, actor=ADMIN)
    lost.refresh_from_db()
    stalled.refresh_from_db()
    assert (lost.status, stalled.status) == (PurgeStatus.FAILED, PurgeStatus.FAILED)
    assert "lost" in lost.log and "stalled" in stalled.log


def test_a_run_is_claimed_once() -> None:
    log(*[("pull", 30)] * 3)
    run = audit_purge_start(retention_hour=24, actor=ADMIN)
    done = audit_purge_run_execute(run_id=run.pk)
    assert (done.status, done.deleted) == (PurgeStatus.SUCCEEDED, 3)
    log(("pull", 30))
    again = audit_purge_run_execute(run_id=run.pk)  # delivered twice: a no-op
    assert (again.status, again.deleted, again.log) == (done.status, 3, done.log)
    assert kept() == ["lib/app:0"]
    assert audit_purge_run_execute(run_id=10**9) is None


@pytest.mark.parametrize(
    ("hours", "operations", "message"),
    [
        (-1, "", "0 to"),
        (None, "", "required"),
        (24, "push,teleport", "unknown 'teleport'"),
        (24, ["DROP TABLE"], "unknown"),
    ],
)
def test_bad_parameters_are_refused(hours, operations, message) -> None:
    with pytest.raises(PurgeInvalid, match=message):
        audit_purge_start(retention_hour=hours, operations=operations, actor=ADMIN)
    assert not AuditPurgeRun.objects.exists()


def test_an_action_the_log_holds_may_be_purged_too() -> None:
    log(("custom_thing", 30))
    assert audit_purge_run(retention_hour=1, operations="custom_thing", actor=ADMIN).deleted == 1


def test_every_recorded_action_is_a_known_operation() -> None:
    recorded: set[str] = set()
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text()
        for call in re.finditer(r"audit_record\((.*?)\)\n", text, re.S):
            recorded |= set(re.findall(r'action="([a-z_-]+)"', call.group(1)))
        # Replication passes its action through a save helper.
        recorded |= set(re.findall(r"_(?:endpoint|policy)_save\([^)]*\"([a-z_-]+)\"\)", text))
    assert {"push", "delete", "purge", "create", "update"} <= recorded
    assert recorded <= set(ACTIONS), recorded - set(ACTIONS)


# The schedule.


def test_the_schedule_is_checked_and_claimed_once_a_minute() -> None:
    assert audit_purge_schedule_get().kind == "None"
    with pytest.raises(PurgeInvalid, match="cron"):
        audit_purge_schedule_set(kind="Custom", cron="every day", retention_hour=1, actor=ADMIN)
    with pytest.raises(PurgeInvalid, match="required"):
        audit_purge_schedule_set(kind="Daily", actor=ADMIN)
    with pytest.raises(PurgeInvalid, match="Manual"):
        audit_purge_schedule_set(kind="Manual", retention_hour=1, actor=ADMIN)
    schedule = audit_purge_schedule_set(
        kind="Custom", cron="30 2 * * *", retention_hour=48, operations="pull", actor=ADMIN
    )
    assert (schedule.cron, schedule.retention_hour, schedule.operations) == (
        "30 2 * * *",
        48,
        ["pull"],
    )
    assert schedule.next_run() is not None
    at = timezone.localtime().replace(hour=2, minute=30, second=5)
    assert audit_purge_scheduled(now=at - timedelta(minutes=1)) is None  # not due
    run = audit_purge_scheduled(now=at)
    assert run is not None and (run.trigger, run.actor, run.operations) == (
        "schedule",
        "system",
        ["pull"],
    )
    AuditPurgeRun.objects.update(status=PurgeStatus.SUCCEEDED)
    assert audit_purge_scheduled(now=at + timedelta(seconds=30)) is None  # the minute is taken
    assert AuditPurgeRun.objects.count() == 1
    audit_purge_schedule_set(kind="None", actor=ADMIN)
    assert audit_purge_scheduled(now=at + timedelta(days=1)) is None
