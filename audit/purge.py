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
DIGEST_MODULUS = 2**256


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
    """The digest of a set of gap rows: the sum of their hashes modulo 2**256, as hex.

    A sum, so a batch updates it from the previous purge entry's with the rows it
    drops and adds (no batch reads the whole table); ``audit_verify`` sums the table.
    """
    return _digest_hex(sum(_gap_term(g) for g in gaps))


def _gap_term(gap: AuditGap) -> int:
    row = [gap.hash_before, gap.hash_after, gap.first_id, gap.last_id, gap.count]
    return int(hashlib.sha256(json.dumps(row, separators=(",", ":")).encode()).hexdigest(), 16)


def _digest_hex(total: int) -> str:
    return f"{total % DIGEST_MODULUS:064x}"


@dataclass(frozen=True)
class _Row:
    id: int
    previous_hash: str
    hash: str


@dataclass(frozen=True)
class Batch:
    """What one purge batch removed: how many entries, and the highest id among them."""

    deleted: int
    last_id: int

    def __bool__(self) -> bool:
        return self.deleted > 0


def audit_purge_batch(
    *,
    cutoff: datetime,
    operations: Sequence[str] = (),
    actor: Actor,
    run_id: int | None = None,
    after_id: int = 0,
    batch_size: int = BATCH_SIZE,
) -> Batch:
    """Delete up to ``batch_size`` of the lowest-id entries a purge removes, in one transaction.

    Only entries after ``after_id`` (the previous batch's ``last_id``: a run's
    batches never scan what they already deleted).  The gaps are recorded and a
    chained ``purge`` entry documents the batch (``actor``: who started the
    purge, ``run_id``: its AuditPurgeRun).  ``deleted`` is 0 when none are left.
    """
    with transaction.atomic():
        head = chain_lock(table_first=True)  # nobody appends or purges until the commit
        doomed = [
            _Row(*values)
            for values in purge_candidates(cutoff=cutoff, operations=operations)
            .filter(id__gt=after_id)
            .order_by("id")
            .values_list("id", "previous_hash", "hash")[:batch_size]
        ]
        if not doomed:
            return Batch(0, after_id)
        absorbed, created = _gaps_after_removing(doomed)
        digest, count = _gaps_stated()  # before the delete: the newest purge entry may be doomed
        digest += sum(_gap_term(g) for g in created) - sum(_gap_term(g) for g in absorbed)
        AuditGap.objects.filter(pk__in=[g.pk for g in absorbed]).delete()
        AuditEntry.objects.filter(pk__in=[row.id for row in doomed]).delete()
        AuditGap.objects.bulk_create(created)
        detail: dict[str, Any] = {
            "run": run_id,
            "deleted": len(doomed),
            "first_id": doomed[0].id,
            "last_id": doomed[-1].id,
            "cutoff": cutoff.astimezone(UTC).isoformat(),
            "operations": sorted(operations),
            "gaps": count + len(created) - len(absorbed),
            "gaps_digest": _digest_hex(digest),
        }
        event = Event(actor.name, PURGE_ACTION, PURGE_RESOURCE, actor.source, detail)
        [entry] = chain_events(head.hash, [event])
        entry.save()
        head.hash = entry.hash
        head.save(update_fields=["hash"])
    return Batch(len(doomed), doomed[-1].id)


def _gaps_stated() -> tuple[int, int]:
    """The gap table's digest (as a number) and size, as the newest purge entry states them."""
    newest = (
        AuditEntry.objects.filter(action=PURGE_ACTION, resource=PURGE_RESOURCE)
        .order_by("-id")
        .values_list("detail", flat=True)
        .first()
    )
    if not newest:
        return 0, 0
    return int(newest["gaps_digest"], 16), int(newest["gaps"])


def _gaps_after_removing(doomed: list[_Row]) -> tuple[list[AuditGap], list[AuditGap]]:
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
    absorbed: dict[int, AuditGap] = {}
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
    return list(absorbed.values()), created


def _absorb(gap: AuditGap, old: AuditGap | None, absorbed: dict[int, AuditGap]) -> None:
    """Take an earlier purge's gap into ``gap`` (once)."""
    if old is None or old.pk in absorbed:
        return
    absorbed[old.pk] = old
    gap.count += old.count
    gap.first_id = min(gap.first_id, old.first_id)
    gap.last_id = max(gap.last_id, old.last_id)
