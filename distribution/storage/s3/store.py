"""``S3Store``: the ``BlobStore`` methods on one bucket, built from the sibling modules.

Upload writes become pieces (``multipart.write_stream``), reads and commits
tile those pieces (``pieces``), and blobs are plain objects read with ranged
GETs and handed out as presigned URLs.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import paths
from ..base import CHUNK_SIZE, BlobReader, BlobStore, hashing
from ..errors import BlobMissing, DigestMismatch, StorageError
from .client import (
    MISSING_CODES,
    connect,
    delete_keys,
    error_code,
    head_size,
    list_objects,
    put_object,
)
from .multipart import MAX_PARTS, PART_SIZE, write_stream
from .pieces import Segment, copy_segments, list_parts, read_segments, tile

MAX_PIECE_OBJECT = 5 << 30
"""An upload piece longer than this is stored as several objects (a multiple of PART_SIZE)."""


def _read_body(body: Any) -> Iterator[bytes]:
    """Stream a GetObject body 1 MiB at a time, closing it when done."""
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()


class S3Store(BlobStore):
    """Blobs and upload pieces as objects of one bucket, under an optional key prefix.

    ``client`` is the boto3 S3 client the store uses (thread-safe; tests hook
    its events).  ``part_size`` and ``max_piece_object`` may be lowered on an
    instance (``part_size`` never below S3's 5 MiB minimum).
    """

    part_size: int = PART_SIZE
    max_piece_object: int = MAX_PIECE_OBJECT

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        """Connect to ``bucket`` (which must exist); nothing is created.

        Without ``access_key``/``secret_key`` the credentials come from the
        usual AWS sources (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
        profiles, instance roles).  With an ``endpoint_url`` (a non-AWS
        server) requests use path-style addressing and send checksums only
        where S3 requires them, which every S3-compatible server understands.
        """
        if not bucket:
            raise ValueError("an S3 store needs a bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.client: Any = connect(
            endpoint_url=endpoint_url,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
        )

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # --- keys ----------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        """The full object key of a ``paths`` key."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _upload_base(self, upload_id: str) -> str:
        """Full key prefix (with the trailing slash) of an upload's objects."""
        return self._key(paths.upload_prefix(upload_id)) + "/"

    def _tile_upload(self, upload_id: str, size: int) -> list[Segment]:
        """The segments holding bytes [0, size) of an upload, as stored now."""
        parts = list_parts(self.client, self.bucket, self._upload_base(upload_id))
        return tile(upload_id, parts, size)

    # --- upload sessions -----------------------------------------------------------------

    def upload_write(self, upload_id: str, offset: int, chunks: Iterable[bytes]) -> int:
        """Store ``chunks`` as the upload's piece at ``offset``; return how many bytes.

        Pieces at or after ``offset`` (from a write that died before it was
        acknowledged) are deleted first, and a piece reaching past ``offset``
        is cut back to it server-side.  Raises ``StorageError`` when the
        stored pieces do not end exactly at ``offset`` otherwise.
        """
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        parts = list_parts(self.client, self.bucket, self._upload_base(upload_id))
        if offset > 0:
            segments = tile(upload_id, [p for p in parts if p.offset < offset], offset)
            last = segments[-1]
            if last.length < last.object_size and not copy_segments(
                self.client, self.bucket, last.key, [last]
            ):
                raise StorageError(f"could not cut {last.key} back to {last.length} bytes")
        delete_keys(self.client, self.bucket, (p.key for p in parts if p.offset >= offset))

        written_keys: list[str] = []
        try:
            return write_stream(
                self.client,
                self.bucket,
                chunks,
                lambda at: self._key(paths.upload_part_key(upload_id, offset + at)),
                part_size=self.part_size,
                max_object=self.max_piece_object,
                written_keys=written_keys,
            )
        except BaseException:
            delete_keys(self.client, self.bucket, written_keys)
            raise

    def upload_read(self, upload_id: str, size: int) -> Iterator[bytes]:
        """Stream the first ``size`` bytes of an upload, piece after piece.

        The pieces are listed (and checked to tile the range) at call time, so
        ``UploadMissing``/``StorageError`` come from this call, not the iteration.
        """
        return read_segments(self.client, self.bucket, self._tile_upload(upload_id, size))

    def upload_commit(self, upload_id: str, digest: str, size: int, *, verify: bool) -> bool:
        """Store the first ``size`` bytes of an upload as the blob ``digest``.

        Returns False, dropping the upload, when the blob is stored already.
        With ``verify`` the pieces are streamed through the hash into a
        multipart upload that is aborted on a mismatch (``DigestMismatch``,
        nothing stored, the upload kept).  Without, the pieces are copied
        server-side when S3's part rules allow it and re-streamed otherwise.
        """
        if size < 0:
            raise ValueError(f"negative size {size}")
        key = self._key(paths.blob_key(digest))
        segments = self._tile_upload(upload_id, size)
        if head_size(self.client, self.bucket, key) is not None:
            # Verified even so: claiming a stored digest must take its bytes.
            if verify:
                self._verify_segments(segments, digest)
            self.upload_delete(upload_id)
            return False
        if verify:
            self._stream_commit(key, segments, size, digest)
        elif not segments:
            put_object(self.client, self.bucket, key, b"")
        elif len(segments) == 1 and segments[0].length == segments[0].object_size:
            # the managed copy switches to a multipart copy for big objects (> 5 GiB works)
            self.client.copy({"Bucket": self.bucket, "Key": segments[0].key}, self.bucket, key)
        elif not copy_segments(self.client, self.bucket, key, segments):
            self._stream_commit(key, segments, size, None)
        self.upload_delete(upload_id)
        return True

    def _verify_segments(self, segments: list[Segment], digest: str) -> None:
        """Hash ``segments`` without storing anything; DigestMismatch if they are not ``digest``."""
        algorithm = paths.algorithm_of(digest)
        hasher = hashlib.new(algorithm)
        source = read_segments(self.client, self.bucket, segments)
        try:
            for chunk in source:
                hasher.update(chunk)
        finally:
            source.close()
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(digest, actual)

    def _stream_commit(
        self, key: str, segments: list[Segment], size: int, digest: str | None
    ) -> None:
        """Re-upload ``segments`` as the object ``key``, checking ``digest`` if given.

        Parts grow past 8 MiB only for blobs over 10,000 x 8 MiB (78 GiB).
        """
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        source = read_segments(self.client, self.bucket, segments)
        stream: Iterable[bytes] = source
        check: Callable[[], None] | None = None
        if digest is not None:
            algorithm = paths.algorithm_of(digest)
            hasher = hashlib.new(algorithm)
            stream = hashing(stream, hasher)

            def check() -> None:
                actual = f"{algorithm}:{hasher.hexdigest()}"
                if actual != digest:
                    raise DigestMismatch(digest, actual)

        try:
            write_stream(
                self.client,
                self.bucket,
                stream,
                lambda _at: key,
                part_size=part_size,
                written_keys=[],
                before_publish=check,
                put_empty=True,
            )
        finally:
            source.close()  # releases the connection of a GET cut short

    def upload_delete(self, upload_id: str) -> None:
        """Delete every piece of an upload and abort multipart uploads still open under it."""
        base = self._upload_base(upload_id)
        stored = (key for key, _size in list_objects(self.client, self.bucket, base))
        delete_keys(self.client, self.bucket, stored)
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Uploads", ()):
                if item["Key"].startswith(base):
                    with contextlib.suppress(BotoCoreError, ClientError):
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"]
                        )

    def upload_ids(self) -> Iterator[str]:
        """Ids of the uploads that have at least one stored piece."""
        base = self._key("uploads/")
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
            for item in page.get("CommonPrefixes", ()):
                yield item["Prefix"][len(base) :].rstrip("/")

    def upload_list(self) -> Iterator[tuple[str, float]]:
        """Ids of uploads with stored pieces or open multipart uploads, with their newest write.

        Lists every piece (one request per 1000 objects) and every open multipart upload.
        """
        base = self._key("uploads/")
        newest: dict[str, float] = {}

        def seen(key: str, when: Any) -> None:
            upload_id = key[len(base) :].split("/", 1)[0]
            if upload_id:
                newest[upload_id] = max(newest.get(upload_id, 0.0), when.timestamp())

        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base
        ):
            for item in page.get("Contents", ()):
                seen(item["Key"], item["LastModified"])
        for page in self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=base
        ):
            for item in page.get("Uploads", ()):
                seen(item["Key"], item["Initiated"])
        yield from newest.items()

    # --- blobs ------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        """Size of the stored blob (a HEAD request), or None when it is not stored."""
        return head_size(self.client, self.bucket, self._key(paths.blob_key(digest)))

    def blob_open(self, digest: str, start: int = 0, length: int | None = None) -> BlobReader:
        """Open ``length`` bytes of a blob from ``start`` with one ranged GET.

        Raises ``BlobMissing`` when the blob is not stored and ``StorageError``
        when the range reaches past its end.  The reader has no ``file``.
        """
        if start < 0 or (length is not None and length < 0):
            raise StorageError(f"bad range: start {start}, length {length}")
        key = self._key(paths.blob_key(digest))
        if length == 0:
            size = head_size(self.client, self.bucket, key)
            if size is None:
                raise BlobMissing(digest)
            if start > size:
                raise StorageError(f"range starts at {start}, past the end of {digest} ({size})")
            return BlobReader(size=size, length=0, chunks=iter(()))
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            request["Range"] = f"bytes={start}-{end}"
        try:
            response = self.client.get_object(**request)
        except ClientError as exc:
            code = error_code(exc)
            if code in MISSING_CODES:
                raise BlobMissing(digest) from None
            if code != "InvalidRange":
                raise
            # the range starts at or past the end: fine only for "the rest" from the very end
            size = head_size(self.client, self.bucket, key)
            if size is None:
                raise BlobMissing(digest) from None
            if length is None and start == size:
                return BlobReader(size=size, length=0, chunks=iter(()))
            raise StorageError(
                f"range starts at {start}, past the end of {digest} ({size} bytes)"
            ) from None
        body = response["Body"]
        received = int(response["ContentLength"])
        content_range = response.get("ContentRange")
        size = int(content_range.rsplit("/", 1)[1]) if content_range else received
        if length is None:
            length = size - start
        if received != length:
            body.close()
            raise StorageError(
                f"range of {length} bytes from {start} reaches past the end of {digest} ({size})"
            )
        return BlobReader(
            size=size, length=length, chunks=_read_body(body), file=None, close=body.close
        )

    def blob_url(self, digest: str, expires: int) -> str | None:
        """A presigned GET URL for the blob, valid for ``expires`` seconds."""
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(paths.blob_key(digest))},
                ExpiresIn=expires,
            )
        )

    def blob_delete(self, digest: str) -> None:
        """Delete a blob; deleting a missing blob is not an error."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(paths.blob_key(digest)))
        except ClientError as exc:
            if error_code(exc) not in MISSING_CODES:
                raise

    def blob_delete_many(self, digests: Iterable[str]) -> None:
        """Delete blobs with DeleteObjects, 1000 keys per request; missing ones are fine."""
        keys = (self._key(paths.blob_key(d)) for d in digests)
        delete_keys(self.client, self.bucket, keys)

    def blob_digests(self) -> Iterator[str]:
        """Every digest stored, listed page by page."""
        skip = len(self.prefix) + 1 if self.prefix else 0
        for key, _size in list_objects(self.client, self.bucket, self._key("blobs/")):
            digest = paths.digest_from_blob_key(key[skip:])
            if digest:
                yield digest
