"""Upload sessions nobody will finish: abandoned rows with their bytes, and bytes with no row."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from ..models import Upload
from ..storage import BlobStore

Step = Callable[[str], None]
logger = logging.getLogger(__name__)


def uploads_abandoned(*, now: datetime) -> QuerySet[Upload]:
    """Sessions untouched for HARBORPY_UPLOAD_EXPIRY whose writer (if any) fell silent as long.

    The same rule ``upload_get`` applies, so no client can still use them; a
    writer's claim that old is dead (they heartbeat every 30 seconds).
    """
    expired = now - timedelta(seconds=settings.HARBORPY_UPLOAD_EXPIRY)
    return Upload.objects.filter(updated_at__lt=expired).filter(
        Q(busy_since__isnull=True) | Q(busy_since__lt=expired)
    )


def uploads_delete(*, now: datetime, store: BlobStore, step: Step) -> tuple[int, int]:
    """Delete abandoned sessions, each row first (conditionally) then its bytes.

    Returns (sessions, bytes).  Bytes left behind by a failure have no row
    any more and go as orphans in a later run.
    """
    count = size = 0
    for upload_id, upload_size in uploads_abandoned(now=now).values_list("id", "size"):
        deleted, _ = uploads_abandoned(now=now).filter(pk=upload_id).delete()
        if deleted:
            store.upload_delete(upload_id)
            count += 1
            size += upload_size
    step(f"uploads: {count} abandoned sessions deleted")
    return count, size


def uploads_orphaned(*, store: BlobStore, cutoff: datetime) -> list[str]:
    """Upload data in the store with no session row, last written before ``cutoff``.

    A session's row is made before its first byte and dropped before its
    bytes (or after a commit took them), so data without a row is never
    needed; the cutoff spares writers that use the store without a session.
    """
    stale = [
        upload_id for upload_id, modified in store.upload_list() if modified < cutoff.timestamp()
    ]
    orphans = []
    for start in range(0, len(stale), 500):
        batch = stale[start : start + 500]
        known = set(Upload.objects.filter(pk__in=batch).values_list("pk", flat=True))
        orphans += [upload_id for upload_id in batch if upload_id not in known]
    return orphans


def orphans_delete(*, orphans: list[str], store: BlobStore, step: Step) -> int:
    """Delete orphaned upload data; return how many sessions' data went."""
    count = 0
    for upload_id in orphans:
        if Upload.objects.filter(pk=upload_id).exists():
            continue  # cannot happen (ids are fresh uuids), but never delete a live session's data
        try:
            store.upload_delete(upload_id)
        except ValueError:  # not a name harborpy makes: not ours to delete
            logger.warning("left upload data %r in the store alone: not an upload id", upload_id)
            continue
        count += 1
    step(f"uploads: {count} orphaned upload data deleted")
    return count
