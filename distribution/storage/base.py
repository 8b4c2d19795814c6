"""The blob-store interface every backend implements.

Streams only: bodies arrive and leave as iterables of bytes in fixed chunks,
never as one ``bytes`` object.  An upload is written in pieces at known
offsets, then committed under its digest after verification; the commit is
atomic (a blob is either complete under its key or absent).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

CHUNK_SIZE = 1 << 20


def hashing(chunks: Iterable[bytes], hasher: Any) -> Iterator[bytes]:
    """Pass ``chunks`` through unchanged, feeding each to ``hasher`` on the way."""
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


class BlobReader:
    """An open byte range of a stored blob.

    ``file`` is set when the bytes sit in a local file positioned at the start
    of the range, so a WSGI server can hand it to sendfile(2); ``chunks`` is
    always usable.  ``close`` releases whatever the reader holds.
    """

    def __init__(
        self,
        *,
        size: int,
        length: int,
        chunks: Iterator[bytes],
        file: IO[bytes] | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.size = size
        self.length = length
        self.chunks = chunks
        self.file = file
        self._close = close

    def close(self) -> None:
        if self._close is not None:
            self._close()


class BlobStore(abc.ABC):
    """A content-addressed blob store with resumable upload sessions."""

    # --- upload sessions -----------------------------------------------------------------

    @abc.abstractmethod
    def upload_write(self, upload_id: str, offset: int, chunks: Iterable[bytes]) -> int:
        """Append ``chunks`` to an upload whose stored data ends at ``offset``.

        Returns how many bytes were written.  If the iterable raises (a client
        that went away), whatever this call wrote is discarded before the
        exception propagates, so the upload still ends at ``offset``.
        """

    @abc.abstractmethod
    def upload_read(self, upload_id: str, size: int) -> Iterator[bytes]:
        """Stream the first ``size`` bytes written to an upload, in order."""

    @abc.abstractmethod
    def upload_commit(self, upload_id: str, digest: str, size: int, *, verify: bool) -> bool:
        """Store the first ``size`` bytes of an upload as the blob ``digest``.

        With ``verify`` the bytes are hashed first and ``DigestMismatch`` is
        raised, storing nothing and keeping the upload, if they do not match;
        this holds when the blob is stored already too (a client must not
        claim a digest without its bytes).  Returns False when the blob was
        already stored (one copy per digest).  The upload's data is gone after
        a successful commit.
        """

    @abc.abstractmethod
    def upload_delete(self, upload_id: str) -> None:
        """Drop all data of an upload session; a missing session is not an error."""

    @abc.abstractmethod
    def upload_ids(self) -> Iterator[str]:
        """Every upload session id that has data in the store."""

    @abc.abstractmethod
    def upload_list(self) -> Iterator[tuple[str, float]]:
        """(id, last write as a POSIX timestamp) of every upload session with data in the store.

        Garbage collection uses the time to spare sessions written to recently.
        """

    # --- blobs ------------------------------------------------------------------------

    @abc.abstractmethod
    def blob_size(self, digest: str) -> int | None:
        """Size of the stored blob, or None when it is not stored."""

    @abc.abstractmethod
    def blob_open(self, digest: str, start: int = 0, length: int | None = None) -> BlobReader:
        """Open ``length`` bytes of a blob from ``start`` (all of it by default).

        Raises ``BlobMissing`` when nothing is stored under the digest and
        ``StorageError`` for a range outside the blob.
        """

    def blob_url(self, digest: str, expires: int) -> str | None:
        """A time-limited URL a client can fetch the blob from directly, if the backend has one."""
        return None

    @abc.abstractmethod
    def blob_delete(self, digest: str) -> None:
        """Delete a blob; deleting a missing blob is not an error."""

    def blob_delete_many(self, digests: Iterable[str]) -> None:
        """Delete several blobs, in as few requests as the backend allows.

        Missing blobs are not an error.  On a failure part of them may be gone
        already; the caller checks which (``blob_size``) before trusting any.
        """
        for digest in digests:
            self.blob_delete(digest)

    @abc.abstractmethod
    def blob_digests(self) -> Iterator[str]:
        """Every digest stored, in no particular order."""

    def blob_put(self, digest: str, chunks: Iterable[bytes], *, upload_id: str) -> bool:
        """Store a whole stream as a blob, verified against ``digest``.

        Goes through an upload session of its own, so it shares the commit
        path (and its atomicity) with chunked uploads.  Returns False if the
        blob was already stored.
        """
        try:
            size = self.upload_write(upload_id, 0, chunks)
            return self.upload_commit(upload_id, digest, size, verify=True)
        finally:
            self.upload_delete(upload_id)
