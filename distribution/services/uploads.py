"""Blob upload sessions: start, append, complete, cancel.

An upload's bytes are in the blob store under its id and its progress is a
database row, so consecutive requests of one upload may land on different
processes or web nodes.  The digest is computed while bytes stream in: the
process that wrote the last piece keeps the live hash object, and the row
keeps the digest of everything stored so far.  A piece that lands on a node
without the live hash leaves the digest unknown, and the commit then
rehashes from the store; correctness never depends on the cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .. import storage
from ..blobstore import blob_store
from ..exceptions import (
    DigestInvalid,
    InternalError,
    NameUnknown,
    QuotaExceeded,
    RangeInvalid,
    Unavailable,
    UploadInvalid,
    UploadUnknown,
)
from ..gc import blob_reclaim
from ..grammar import check_digest
from ..models import Blob, BlobState, Upload
from .repositories import (
    blob_link,
    blobs_touch,
    project_for_push,
    quota_check,
    repository_for_push,
)

logger = logging.getLogger(__name__)

LIVE_ALGORITHM = "sha256"
# A writer renews its claim this often while a body streams...
HEARTBEAT_SECONDS = 30
# ...so one silent for this long is dead (its process died) and may be taken over.
BUSY_TIMEOUT = timedelta(minutes=15)
# How long a completion waits for garbage collection to finish deleting an old copy of its blob.
RESERVE_TIMEOUT = 30.0


class _LiveHashes:
    """Hash objects of uploads this process is receiving, keyed by upload id.

    Bounded; an entry is only used when it has seen exactly the bytes the row says are stored.
    """

    def __init__(self, capacity: int = 256) -> None:
        self._entries: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def take(self, upload: Upload) -> Any | None:
        with self._lock:
            entry = self._entries.pop(upload.id, None)
        if entry is not None and entry[0] == upload.size:
            return entry[1]
        if upload.size == 0:
            return hashlib.new(LIVE_ALGORITHM)
        return None

    def keep(self, upload_id: str, size: int, hasher: Any) -> None:
        with self._lock:
            self._entries[upload_id] = (size, hasher)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._entries.pop(upload_id, None)


_live = _LiveHashes()


@contextmanager
def _bookkeeping() -> Iterator[None]:
    """A transaction for upload-session rows that need not wait for the disk.

    Losing such a write in a database crash is harmless: the store cuts an
    upload back to the size its row gives, a client told otherwise gets 416 or
    404 and starts over, and the digest is verified at commit whatever the row
    said.  So on PostgreSQL these commits skip waiting for the WAL flush, which
    is most of their cost.  Blob links and manifests stay fully durable.
    """
    # Only a transaction of its own: SET LOCAL inside an enclosing one would make
    # that whole transaction's commit asynchronous too.
    relaxed = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if relaxed:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def upload_start(*, repository_name: str) -> Upload:
    """Open an upload session for a repository of an existing project."""
    project_for_push(repository_name)  # refuse before the client sends a byte
    with _bookkeeping():
        return Upload.objects.create(id=str(uuid.uuid4()), repository_name=repository_name)


def upload_get(*, repository_name: str, upload_id: str) -> Upload:
    """The upload session ``upload_id`` of ``repository_name``, or UploadUnknown.

    A session untouched for longer than HARBORPY_UPLOAD_EXPIRY is abandoned: it is
    dropped here and the client must start over.
    """
    try:
        uuid.UUID(upload_id)
        upload = Upload.objects.get(pk=upload_id, repository_name=repository_name)
    except (ValueError, Upload.DoesNotExist):
        raise UploadUnknown("blob upload unknown to registry", detail={"uuid": upload_id}) from None
    expiry = timedelta(seconds=settings.HARBORPY_UPLOAD_EXPIRY)
    if upload.updated_at < timezone.now() - expiry and upload.busy_since is None:
        _discard(upload)
        raise UploadUnknown("blob upload expired", detail={"uuid": upload_id})
    return upload


def upload_append(*, upload: Upload, chunks: Iterable[bytes], start: int | None = None) -> Upload:
    """Append a piece to an upload.

    ``start`` is the first offset the client says the piece covers; it must be
    where the upload ends (RangeInvalid otherwise, nothing written).  If the
    body breaks off, nothing of it is kept and the upload ends where it did.
    """
    if start is not None and start != upload.size:
        raise RangeInvalid(f"upload ends at byte {upload.size}, not {start}", upload=upload)
    token = _claim(upload)
    hasher = _live.take(upload)
    stream = chunks if hasher is None else storage.hashing(chunks, hasher)
    try:
        written = blob_store().upload_write(
            upload.id, upload.size, _heartbeat(stream, upload.id, token)
        )
    except storage.StorageError:
        # The store lost the session's bytes or holds other than the row says.
        raise _lost(upload) from None
    except BaseException:
        _live.drop(upload.id)
        _release(upload, token)
        raise
    size = upload.size + written
    digest = f"{LIVE_ALGORITHM}:{hasher.hexdigest()}" if hasher is not None else ""
    with _bookkeeping():
        saved = Upload.objects.filter(pk=upload.id, claim=token, size=upload.size).update(
            size=size, digest=digest, busy_since=None, claim="", updated_at=timezone.now()
        )
    if not saved:  # another request took the upload over: this piece does not count
        _live.drop(upload.id)
        current = Upload.objects.filter(pk=upload.id).first()
        if current is None:
            raise UploadUnknown("blob upload unknown to registry", detail={"uuid": upload.id})
        raise RangeInvalid("another request took this upload over", upload=current)
    upload.size, upload.digest, upload.busy_since, upload.claim = size, digest, None, ""
    if hasher is not None:
        _live.keep(upload.id, upload.size, hasher)
    return upload


def upload_complete(
    *, upload: Upload, digest: str, chunks: Iterable[bytes] | None = None, start: int | None = None
) -> Blob:
    """Finish an upload (with an optional last piece) and store it as blob ``digest``.

    If the bytes do not hash to ``digest`` the session is dropped, nothing is
    stored, and DigestInvalid is raised.
    """
    check_digest(digest)
    if chunks is not None:
        upload = upload_append(upload=upload, chunks=chunks, start=start)
    # Before the bytes are committed: a push over quota stores nothing, session included.
    try:
        project = project_for_push(upload.repository_name)
        quota_check(project=project, digest=digest, size=upload.size)
    except (QuotaExceeded, NameUnknown):
        _discard(upload)
        raise
    # The claim also names the digest being committed: from here until the session's row
    # goes, garbage collection leaves that blob alone (docs/gc.md).
    token = _claim(upload, committing=digest)
    _live.drop(upload.id)
    try:
        _reserve(digest)
        _commit(upload, digest)
    except (DigestInvalid, UploadUnknown):
        raise  # the session is gone already
    except BaseException:
        # Let the client retry at once instead of waiting out the claim.
        _release(upload, token)
        raise
    # The bytes are stored under their digest and the session's data is gone:
    # whatever happens now, this session cannot be continued.
    try:
        with transaction.atomic():
            repository = repository_for_push(upload.repository_name)
            blob = blob_link(repository=repository, digest=digest, size=upload.size)
            if blob is None:  # the committing claim keeps the collector away: a bug
                raise InternalError("garbage collection took a blob being committed")
            upload.delete()
    except BaseException:
        _discard(upload)
        raise
    return blob


def _reserve(digest: str) -> None:
    """Before committing blob ``digest``: touch a stored copy, or wait until a doomed one is gone.

    A copy the collector is deleting must not count as stored (its bytes are
    going), and our bytes must not land before its deletion (they would go
    too); so wait until the collector has finished with it, or finish that
    deletion here when no collector is running (one died midway).
    """
    deadline = time.monotonic() + RESERVE_TIMEOUT
    while True:
        if blobs_touch(digests=[digest]):
            return
        if not Blob.objects.filter(digest=digest, state=BlobState.DELETING).exists():
            return  # not stored, or gone now: the upload's bytes become the blob
        if blob_reclaim(digest=digest):
            continue
        if time.monotonic() > deadline:
            raise Unavailable(
                "garbage collection is deleting an old copy of this blob; retry shortly",
                retry_after=5,
                detail={"digest": digest},
            )
        time.sleep(0.05)


def _commit(upload: Upload, digest: str) -> None:
    """Commit the upload's bytes under ``digest``, hashing them again only when needed."""
    known = upload.digest
    same_algorithm = known.split(":", 1)[0] == digest.split(":", 1)[0]
    try:
        if known and same_algorithm and known != digest:
            raise storage.DigestMismatch(digest, known)
        blob_store().upload_commit(
            upload.id, digest, upload.size, verify=not (known and same_algorithm)
        )
    except storage.DigestMismatch as mismatch:
        _discard(upload)
        raise DigestInvalid(
            "provided digest did not match uploaded content",
            detail={"digest": digest, "actual": mismatch.actual},
        ) from None
    except storage.UploadMissing:
        raise _lost(upload) from None


def upload_monolithic(*, repository_name: str, digest: str, chunks: Iterable[bytes]) -> Blob:
    """Store a whole blob sent in one request; on any failure no session or byte remains."""
    check_digest(digest)
    upload = upload_start(repository_name=repository_name)
    try:
        return upload_complete(upload=upload, digest=digest, chunks=chunks)
    except BaseException:
        _discard(upload)
        raise


def upload_cancel(*, upload: Upload) -> None:
    """Abandon an upload session and drop its bytes."""
    _discard(upload)


def _discard(upload: Upload) -> None:
    """Forget an upload: its row first, so that no request can use it any more, then its
    bytes.  Bytes that cannot be deleted now (the store is unreachable) have no row and
    are reclaimed by garbage collection."""
    _live.drop(upload.id)
    Upload.objects.filter(pk=upload.id).delete()
    try:
        blob_store().upload_delete(upload.id)
    except Exception:
        logger.warning("could not delete the data of upload %s", upload.id, exc_info=True)


def _lost(upload: Upload) -> UploadUnknown:
    """Drop a session whose bytes the store no longer has; the error tells the client."""
    _discard(upload)
    return UploadUnknown(
        "the upload's data is gone from storage; start the upload again",
        detail={"uuid": upload.id},
    )


def _release(upload: Upload, token: str) -> None:
    """Drop this request's claim on the upload (if it still holds it)."""
    with _bookkeeping():
        Upload.objects.filter(pk=upload.id, claim=token).update(
            busy_since=None, claim="", committing=""
        )


def _claim(upload: Upload, *, committing: str = "") -> str:
    """Make this request the upload's one writer; return its claim token.

    ``committing`` is the digest a completion is about to commit (empty for an
    append); the row keeps it for garbage collection to see.

    A conditional UPDATE instead of a held row lock: a long body must not keep
    a transaction (and, on SQLite, the whole database) locked while it streams.
    A claim whose writer has been silent for BUSY_TIMEOUT is taken over: the
    writer heartbeats while it streams and bodies time out long before that,
    so it is dead.  Its digest is then not trusted, and the commit rehashes.
    """
    token = uuid.uuid4().hex
    now = timezone.now()
    mine = Upload.objects.filter(pk=upload.id, size=upload.size)
    with _bookkeeping():
        claimed = mine.filter(busy_since__isnull=True).update(
            busy_since=now, claim=token, committing=committing
        )
        if not claimed:
            claimed = mine.filter(busy_since__lt=now - BUSY_TIMEOUT).update(
                busy_since=now, claim=token, digest="", committing=committing
            )
            if claimed:
                upload.digest = ""
                _live.drop(upload.id)
    if not claimed:
        current = Upload.objects.filter(pk=upload.id).first()
        if current is None:
            raise UploadUnknown("blob upload unknown to registry", detail={"uuid": upload.id})
        raise RangeInvalid("another request is writing to this upload", upload=current)
    upload.claim = token
    return token


def _heartbeat(chunks: Iterable[bytes], upload_id: str, token: str) -> Iterator[bytes]:
    """Pass ``chunks`` on, renewing the claim while they stream; stop if it was lost."""
    renewed = time.monotonic()
    for chunk in chunks:
        if time.monotonic() - renewed >= HEARTBEAT_SECONDS:
            with _bookkeeping():
                held = Upload.objects.filter(pk=upload_id, claim=token).update(
                    busy_since=timezone.now()
                )
            if not held:
                raise UploadInvalid("another request took this upload over")
            renewed = time.monotonic()
        yield chunk
