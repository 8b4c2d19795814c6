"""Removing old entries from the hash chain without making it unverifiable.

A purge deletes entries in batches (``BATCH_SIZE`` per transaction, so a huge
log never holds one long transaction).  Each batch, holding the chain's head
lock, deletes its entries, records where they were as ``AuditGap`` rows
(one per run of neighbouring removed entries, merged with the gaps of earlier
purges it touches) and appends one chained entry of action ``purge`` that
states how many went and the digest of the whole gap table.  ``audit_verify``
crosses a missing stretch only through a gap row whose hashes and id range
fit exactly, and checks the table against the newest purge entry's digest:
so after every committed batch the chain verifies, and an entry deleted or
edited without a purge is still found.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from .models import PURGE_ACTION, PURGE_RESOURCE, AuditEntry, AuditGap
from .services import Actor, Event, chain_events, chain_lock

BATCH_SIZE = 5000
"""Entries deleted per transaction."""


def purge_candidates(*, cutoff: datetime, operations: Sequence[str] = ()) -> QuerySet[AuditEntry]:
    """The entries a purge removes: recorded before ``cutoff``, of ``operations`` (none: all)."""
    entries = AuditEntry.objects.filter(at__lt=cutoff)
    if operations:
        entries = entries.filter(action__in=list(operations))
    return entries


def audit_purge_count(*, cutoff: datetime, operations: Sequence[str] = ()) -> int:
    """How many entries a purge with these parameters would remove now (a dry run)."""
    return purge_candidates(cutoff=cutoff, operations=operations).count()


def gaps_digest(gaps: Iterable[AuditGap]) -> str:
    """The digest of a set of gap rows, in a canonical order (what purge entries record)."""
    rows = sorted((g.hash_before, g.hash_after, g.first_id, g.last_id, g.count) for g in gaps)
    canonical = json.dumps(rows, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class _Row:
    id: int
    previous_hash: str
    hash: str


def audit_purge_batch(
    *,
    cutoff: datetime,
    operations: Sequence[str] = (),
    actor: Actor,
    run_id: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Delete up to ``batch_size`` of the oldest-id entries a purge removes, in one transaction.

    The gaps are recorded and a chained ``purge`` entry documents the batch
    (``actor``: who started the purge, ``run_id``: its AuditPurgeRun).  Returns
    how many entries were deleted: 0 when none are left.
    """
    with transaction.atomic():
        head = chain_lock(table_first=True)  # nobody appends or purges until the commit
        doomed = [
            _Row(*values)
            for values in purge_candidates(cutoff=cutoff, operations=operations)
            .order_by("id")
            .values_list("id", "previous_hash", "hash")[:batch_size]
        ]
        if not doomed:
            return 0
        absorbed, created = _gaps_after_removing(doomed)
        AuditGap.objects.filter(pk__in=absorbed).delete()
        AuditEntry.objects.filter(pk__in=[row.id for row in doomed]).delete()
        AuditGap.objects.bulk_create(created)
        detail: dict[str, Any] = {
            "run": run_id,
            "deleted": len(doomed),
            "first_id": doomed[0].id,
            "last_id": doomed[-1].id,
            "cutoff": cutoff.astimezone(UTC).isoformat(),
            "operations": sorted(operations),
            "gaps": AuditGap.objects.count(),
            "gaps_digest": gaps_digest(AuditGap.objects.all()),
        }
        event = Event(actor.name, PURGE_ACTION, PURGE_RESOURCE, actor.source, detail)
        [entry] = chain_events(head.hash, [event])
        entry.save()
        head.hash = entry.hash
        head.save(update_fields=["hash"])
    return len(doomed)


def _gaps_after_removing(doomed: list[_Row]) -> tuple[set[int], list[AuditGap]]:
    """The gap rows to drop and to create once ``doomed`` (sorted by id) is removed.

    Entries follow each other in the chain directly (the next one's
    previous_hash is this one's hash) or across a gap.  Each run of doomed
    entries that follow each other becomes one gap, which takes in the gaps
    before, inside and after it.
    """
    by_hash = {row.hash: row for row in doomed}
    into = {  # the gap ending just before a doomed entry, by that entry's previous_hash
        g.hash_after: g
        for g in AuditGap.objects.filter(hash_after__in=[row.previous_hash for row in doomed])
    }
    out_of = {  # the gap starting just after a doomed entry, by that entry's hash
        g.hash_before: g for g in AuditGap.objects.filter(hash_before__in=list(by_hash))
    }

    def predecessor(row: _Row) -> str:
        """The hash of the entry before ``row`` in the chain, across a gap if there is one."""
        gap = into.get(row.previous_hash)
        return gap.hash_before if gap else row.previous_hash

    following = {predecessor(row): row for row in doomed if predecessor(row) in by_hash}
    absorbed: set[int] = set()
    created = []
    for start in doomed:
        if predecessor(start) in by_hash:
            continue  # inside a run that starts earlier
        gap = AuditGap(hash_before=predecessor(start), first_id=start.id, last_id=start.id, count=0)
        row: _Row | None = start
        last = start
        while row is not None:
            gap.count += 1
            last = row
            _absorb(gap, into.get(row.previous_hash), absorbed)
            row = following.get(row.hash)
        after = out_of.get(last.hash)
        _absorb(gap, after, absorbed)
        gap.hash_after = after.hash_after if after else last.hash
        gap.last_id = max(gap.last_id, last.id)
        created.append(gap)
    return absorbed, created


def _absorb(gap: AuditGap, old: AuditGap | None, absorbed: set[int]) -> None:
    """Take an earlier purge's gap into ``gap`` (once)."""
    if old is None or old.pk in absorbed:
        return
    absorbed.add(old.pk)
    gap.count += old.count
    gap.first_id = min(gap.first_id, old.first_id)
    gap.last_id = max(gap.last_id, old.last_id)
