"""Reading and checking the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from .models import (
    GENESIS,
    PURGE_ACTION,
    PURGE_RESOURCE,
    AuditEntry,
    AuditGap,
    AuditHead,
    AuditPurgeRun,
)
from .purge import gaps_digest
from .services import entry_hash


@dataclass(frozen=True)
class ChainCheck:
    """The result of walking the chain: intact, or where it first breaks.

    ``purged``: entries that recorded purges removed (the documented gaps crossed).
    """

    entries: int
    broken_at: AuditEntry | None = None
    reason: str = ""
    purged: int = 0

    @property
    def intact(self) -> bool:
        return not self.reason


def audit_verify() -> ChainCheck:
    """Walk every entry in order and check each link; report the first broken one.

    A link may cross entries a purge removed only through the gap row recorded
    for exactly that stretch (audit.purge); every gap row must be crossed, and
    the gap table must be the one the newest ``purge`` entry's digest states.
    Read in one snapshot on PostgreSQL, so appends and purges meanwhile do not
    look like tampering.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return _walk()
    return _walk()


def _walk() -> ChainCheck:
    gaps = {gap.hash_before: gap for gap in AuditGap.objects.all()}
    expected, previous_id = GENESIS, 0
    count = crossed = purged = 0
    digest: str | None = None  # of the gap table, as the newest purge entry states it
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.previous_hash != expected:
            gap = gaps.get(expected)
            if not (
                gap is not None
                and gap.hash_after == entry.previous_hash
                and previous_id < gap.first_id <= gap.last_id < entry.id
            ):
                reason = "an entry before it was removed or reordered, and no purge records that"
                return ChainCheck(count, entry, reason, purged)
            crossed += 1
            purged += gap.count
        if entry_hash(entry.previous_hash, entry) != entry.hash:
            return ChainCheck(count, entry, "its recorded fields were changed", purged)
        if entry.action == PURGE_ACTION and entry.resource == PURGE_RESOURCE:
            digest = str(entry.detail.get("gaps_digest", ""))
        expected, previous_id = entry.hash, entry.id
        count += 1
    head = AuditHead.objects.filter(id=1).first()
    if (head.hash if head else GENESIS) != expected:
        return ChainCheck(count, None, "the newest entries were removed", purged)
    stated = gaps_digest(()) if digest is None else digest  # no purge yet: no gaps
    if crossed != len(gaps) or stated != gaps_digest(gaps.values()):
        return ChainCheck(count, None, "the record of purged entries was changed", purged)
    return ChainCheck(count, purged=purged)


def audit_list(
    *,
    actor: str = "",
    action: str = "",
    resources: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
) -> QuerySet[AuditEntry]:
    """Entries, newest first: by ``actor`` and ``action`` when given, and when ``resources``
    or ``prefixes`` are given, only those whose resource is one of them or starts with one."""
    entries = AuditEntry.objects.order_by("-id")
    if actor:
        entries = entries.filter(actor=actor)
    if action:
        entries = entries.filter(action=action)
    if resources or prefixes:
        scope = Q(resource__in=resources)
        for prefix in prefixes:
            scope |= Q(resource__startswith=prefix)
        entries = entries.filter(scope)
    return entries


def audit_actions() -> list[str]:
    """The action names the log holds, for a filter's choices."""
    return sorted(AuditEntry.objects.values_list("action", flat=True).distinct().order_by())


def audit_purge_run_list() -> QuerySet[AuditPurgeRun]:
    """Every log rotation run, newest first."""
    return AuditPurgeRun.objects.order_by("-created_at", "-id")


def audit_purge_run_get(*, run_id: int) -> AuditPurgeRun | None:
    return AuditPurgeRun.objects.filter(pk=run_id).first()
