"""Blob mark and sweep (docs/gc.md).

Mark: ``active`` blobs that no manifest refers to and no push touched within
the grace window become ``marked``.  Sweep: each batch of marked blobs goes
``marked -> deleting`` in one transaction that checks everything again (still
marked, still untouched, still unreferenced, no upload committing it), then
their bytes are deleted from the store, then their rows.  A push that touches
a marked blob makes it ``active`` and the transition skips it; a push that
meets a ``deleting`` blob treats it as missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from ..blobstore import blob_store
from ..models import Blob, BlobState, Manifest, Upload
from ..storage import BlobStore
from .lock import GCLocked, gc_lock

Step = Callable[[str], None]


@dataclass
class Freed:
    """Blobs deleted (or, in a dry run, that would be) and their bytes."""

    count: int = 0
    bytes: int = 0

    def add(self, sizes: Iterable[int]) -> None:
        for size in sizes:
            self.count += 1
            self.bytes += size


def _tables() -> dict[str, str]:
    return {
        "blob": Blob._meta.db_table,
        "refs": Manifest.blobs.through._meta.db_table,
        "upload": Upload._meta.db_table,
    }


def _update(ids: Sequence[int], *, state: str, where: str, params: Sequence[Any]) -> list:
    """Set ``state`` on the blobs among ``ids`` that match ``where``; return (id, digest, size)
    of those changed.

    On PostgreSQL the rows are locked in id order first, as pushes lock them
    (``blobs_touch``), so the two never deadlock; SQLite runs one writer at a time.
    """
    if not ids:
        return []
    t = _tables()
    marks = ", ".join(["%s"] * len(ids))
    order = " ORDER BY b.id FOR UPDATE" if connection.vendor == "postgresql" else ""
    sql = (
        f"UPDATE {t['blob']} SET state = %s WHERE id IN (SELECT b.id FROM {t['blob']} b"
        f" WHERE b.id IN ({marks}) AND {where}{order}) RETURNING id, digest, size"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [state, *ids, *params])
        return list(cursor.fetchall())


def _unreferenced() -> str:
    t = _tables()
    return f"NOT EXISTS (SELECT 1 FROM {t['refs']} r WHERE r.blob_id = b.id)"


def _not_committing() -> str:
    t = _tables()
    return f"NOT EXISTS (SELECT 1 FROM {t['upload']} u WHERE u.committing = b.digest)"


def _id_batches(queryset, batch_size: int) -> Iterable[list[int]]:
    """Ids of ``queryset`` in ascending batches, read afresh for each batch."""
    last = 0
    while True:
        ids = list(
            queryset.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def blobs_mark(*, cutoff: datetime, batch_size: int, step: Step) -> int:
    """Mark the active blobs no manifest refers to, untouched since ``cutoff``; return how many."""
    total = Blob.objects.count()
    seen = marked = 0
    for ids in _id_batches(Blob.objects.all(), batch_size):
        with transaction.atomic():
            changed = _update(
                ids,
                state=BlobState.MARKED,
                where=f"b.state = %s AND b.touched_at < %s AND {_unreferenced()}",
                params=[BlobState.ACTIVE, cutoff],
            )
        seen += len(ids)
        marked += len(changed)
        step(f"mark: {seen}/{total} blobs, {marked} marked")
    return marked


def blobs_sweep(
    *, cutoff: datetime, store: BlobStore, batch_size: int, step: Step, freed: Freed
) -> None:
    """Delete the marked blobs that are still garbage, batch by batch, adding them to ``freed``.

    Raises on a storage failure after settling the failed batch (``_settle``):
    the blobs of later batches are untouched.
    """
    marked = Blob.objects.filter(state=BlobState.MARKED)
    total = marked.count()
    seen = 0
    for ids in _id_batches(marked, batch_size):
        with transaction.atomic():
            doomed = _update(
                ids,
                state=BlobState.DELETING,
                where=(
                    f"b.state = %s AND b.touched_at < %s"
                    f" AND {_unreferenced()} AND {_not_committing()}"
                ),
                params=[BlobState.MARKED, cutoff],
            )
        blobs_delete(doomed=doomed, store=store, freed=freed)
        seen += len(ids)
        step(f"sweep: {seen}/{total} blobs, {freed.count} deleted")


def blobs_delete(*, doomed: Sequence[tuple[int, str, int]], store: BlobStore, freed: Freed) -> None:
    """Delete ``deleting`` blobs (id, digest, size): their bytes, then their rows."""
    if not doomed:
        return
    doomed = sorted(doomed)  # in id order, so a failure leaves a predictable prefix done
    try:
        store.blob_delete_many(digest for _, digest, _ in doomed)
    except Exception:
        _settle(doomed, store, freed)
        raise
    ids = [blob_id for blob_id, _, _ in doomed]
    with transaction.atomic():
        Blob.objects.filter(id__in=ids, state=BlobState.DELETING).delete()
    freed.add(size for _, _, size in doomed)


def _settle(doomed: Sequence[tuple[int, str, int]], store: BlobStore, freed: Freed) -> None:
    """After a failed delete: finish the blobs whose bytes are gone, give back the others.

    A blob whose bytes are still stored is ``marked`` again (intact, usable);
    one whose bytes went loses its row.  If the store cannot even say, the
    rows stay ``deleting`` and the next run (or a push) finishes them.
    """
    try:
        gone = {blob_id for blob_id, digest, _ in doomed if store.blob_size(digest) is None}
    except Exception:
        return
    kept = [blob_id for blob_id, _, _ in doomed if blob_id not in gone]
    with transaction.atomic():
        Blob.objects.filter(id__in=gone, state=BlobState.DELETING).delete()
        Blob.objects.filter(id__in=kept, state=BlobState.DELETING).update(state=BlobState.MARKED)
    freed.add(size for blob_id, _, size in doomed if blob_id in gone)


def blobs_resume(*, store: BlobStore, batch_size: int, step: Step, freed: Freed) -> None:
    """Finish the deletions a collector that died left behind (rows still ``deleting``)."""
    left = Blob.objects.filter(state=BlobState.DELETING)
    for ids in _id_batches(left, batch_size):
        doomed = list(
            Blob.objects.filter(id__in=ids, state=BlobState.DELETING).values_list(
                "id", "digest", "size"
            )
        )
        blobs_delete(doomed=doomed, store=store, freed=freed)
    if freed.count:
        step(f"resume: finished deleting {freed.count} blobs a previous run left")


def blobs_unmark(*, batch_size: int) -> None:
    """Make every blob still ``marked`` active again: after a run, no blob stays marked."""
    for ids in _id_batches(Blob.objects.filter(state=BlobState.MARKED), batch_size):
        with transaction.atomic():
            _update(ids, state=BlobState.ACTIVE, where="b.state = %s", params=[BlobState.MARKED])


def blobs_count(
    *, cutoff: datetime, ignored_manifests: set[int], batch_size: int, step: Step
) -> Freed:
    """What mark and sweep would delete now, changing nothing (the dry run).

    References from ``ignored_manifests`` (manifests the run would delete) do not count.
    """
    would = Freed()
    total = Blob.objects.count()
    seen = 0
    refs = Manifest.blobs.through.objects
    for ids in _id_batches(Blob.objects.all(), batch_size):
        rows = list(
            Blob.objects.filter(id__in=ids).values_list(
                "id", "digest", "size", "state", "touched_at"
            )
        )
        referenced = {
            blob_id
            for blob_id, manifest_id in refs.filter(blob_id__in=ids).values_list(
                "blob_id", "manifest_id"
            )
            if manifest_id not in ignored_manifests
        }
        committing = set(
            Upload.objects.filter(committing__in=[r[1] for r in rows]).values_list(
                "committing", flat=True
            )
        )
        would.add(
            size
            for blob_id, digest, size, state, touched_at in rows
            if state == BlobState.DELETING
            or (touched_at < cutoff and blob_id not in referenced and digest not in committing)
        )
        seen += len(ids)
        step(f"count: {seen}/{total} blobs, {would.count} unreferenced")
    return would


def blob_reclaim(*, digest: str) -> bool:
    """Finish deleting blob ``digest`` if it is ``deleting`` and no collector is running.

    For a push that meets a blob a dead (or failed) collector left half
    deleted.  Returns False when a collector is running: it will finish the
    blob itself, soon.
    """
    try:
        with gc_lock():
            doomed = list(
                Blob.objects.filter(digest=digest, state=BlobState.DELETING).values_list(
                    "id", "digest", "size"
                )
            )
            blobs_delete(doomed=doomed, store=blob_store(), freed=Freed())
    except GCLocked:
        return False
    return True
