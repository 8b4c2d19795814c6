"""Blob store on any S3-compatible object store (AWS S3, MinIO, SeaweedFS, Ceph, moto).

Under the store's prefix (which may be empty) the keys are those of ``paths``::

    blobs/<algorithm>/<xx>/<hex>          one object per committed blob
    uploads/<session>/<offset, 16 hex>    one object per piece written to an upload

An object cannot be appended to, so every ``upload_write`` stores its piece as an
object of its own keyed by the offset it starts at; the pieces tile the upload.
A verified commit streams the pieces through the hash into a multipart upload
of the blob key and aborts it (nothing is stored) when the digest does not
match; an unverified commit copies the pieces server-side.  Either way the blob
appears atomically: S3 publishes an object only when its PUT, copy or
multipart complete succeeds.

Memory is bounded by one part (8 MiB) plus a read chunk, whatever the blob size.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, NamedTuple

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from . import paths
from .base import CHUNK_SIZE, BlobReader, BlobStore
from .errors import BlobMissing, DigestMismatch, StorageError, UploadMissing

PART_SIZE = 8 << 20
"""Bytes buffered per multipart part: the bound on the memory a stream needs."""
MIN_PART_SIZE = 5 << 20
"""S3's smallest part, except for the last part of a multipart upload."""
MAX_PART_SIZE = 5 << 30
"""S3's largest part (and largest single-request copy)."""
MAX_PARTS = 10_000
"""S3's most parts per multipart upload."""
MAX_PIECE_OBJECT = 5 << 30
"""An upload piece longer than this is stored as several objects (a multiple of PART_SIZE)."""
DELETE_BATCH = 1000
"""S3's most keys per DeleteObjects request."""

_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class _Part(NamedTuple):
    """One stored object of an upload: the piece starting at ``offset``."""

    offset: int
    key: str
    size: int


class _Segment(NamedTuple):
    """``length`` bytes from ``start`` of the object ``key``, which holds ``object_size``."""

    key: str
    start: int
    length: int
    object_size: int


_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session for every store, made on first use (call with ``_SESSION_LOCK`` held).

    Clients of one session share its parsed service models, which makes
    opening a store about three times faster; the credentials are per client.
    """
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def _error_code(exc: ClientError) -> str:
    """The S3 error code of a failed request (``"404"`` for a HEAD that found nothing)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _hashing(chunks: Iterable[bytes], hasher: Any) -> Iterator[bytes]:
    """Pass ``chunks`` through unchanged, feeding each to ``hasher`` on the way."""
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


class _Multipart:
    """One S3 multipart upload, numbering its parts as they are added."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id: str = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        self.parts: list[dict[str, Any]] = []

    def _next_number(self) -> int:
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise StorageError(f"{self.key} would need more than {MAX_PARTS} parts")
        return number

    def add(self, data: bytes | bytearray) -> None:
        """Upload ``data`` as the next part."""
        number = self._next_number()
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=bytes(data),
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def add_copy(self, source_key: str, start: int, length: int) -> None:
        """Copy ``length`` bytes from ``start`` of ``source_key`` server-side as the next part."""
        number = self._next_number()
        response = self.client.upload_part_copy(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": source_key},
            CopySourceRange=f"bytes={start}-{start + length - 1}",
        )
        self.parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})

    def complete(self) -> None:
        """Publish the object (atomically) from the parts added so far."""
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        """Drop the parts uploaded so far; nothing is published.  Never raises."""
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


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
        options: dict[str, Any] = {"signature_version": "s3v4", "retries": {"mode": "standard"}}
        if endpoint_url:
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        with _SESSION_LOCK:  # a boto3 session is not thread-safe; its clients are
            session = _shared_session()
            self.client: Any = session.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region or session.region_name or "us-east-1",
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=Config(**options),
            )

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # --- keys and bulk helpers ---------------------------------------------------------

    def _key(self, relative: str) -> str:
        """The full object key of a ``paths`` key."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(full key, size) of every object whose key starts with the full ``prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                yield item["Key"], int(item["Size"])

    def _delete_keys(self, keys: Iterable[str]) -> None:
        """Delete objects by full key, up to 1000 per request; missing keys are fine."""
        batch: list[dict[str, str]] = []
        for key in keys:
            batch.append({"Key": key})
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        response = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = [e for e in response.get("Errors", ()) if e.get("Code") not in _MISSING_CODES]
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} object(s), first {first.get('Key')!r}: "
                f"{first.get('Code')} {first.get('Message', '')}".rstrip()
            )

    def _head(self, key: str) -> int | None:
        """Size of the object under the full ``key``, or None when there is none."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise
        return int(response["ContentLength"])

    def _put(self, key: str, data: bytes | bytearray) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data))

    # --- streaming ---------------------------------------------------------------------

    def _write_stream(
        self,
        chunks: Iterable[bytes],
        key_for: Callable[[int], str],
        *,
        part_size: int,
        written_keys: list[str],
        max_object: int | None = None,
        before_publish: Callable[[], None] | None = None,
        put_empty: bool = False,
    ) -> int:
        """Store a stream as objects, buffering at most ``part_size`` bytes; return its length.

        A stream that fits one part is stored with one PUT, a longer one with a
        multipart upload.  With ``max_object`` the stream is cut into objects of
        at most that many bytes (a multiple of ``part_size``), the one starting
        at stream offset ``n`` stored under ``key_for(n)``.  ``before_publish``
        runs once the stream is exhausted and before the last object is
        published; if it (or the stream, or S3) raises, the unfinished
        multipart upload is aborted and the exception propagates.  Every key
        that may hold an object of this stream is appended to ``written_keys``
        for the caller to clean up.  An empty stream stores nothing unless
        ``put_empty``.
        """
        total = 0
        object_start = 0
        upload: _Multipart | None = None
        buffer = bytearray()
        try:
            for chunk in chunks:
                view = memoryview(chunk).cast("B")
                while view:
                    if len(buffer) == part_size:  # more bytes follow, so this is not the last part
                        if upload is None:
                            upload = _Multipart(self.client, self.bucket, key_for(object_start))
                            written_keys.append(upload.key)
                        upload.add(buffer)
                        buffer = bytearray()
                        if max_object is not None and total - object_start >= max_object:
                            upload.complete()
                            upload = None
                            object_start = total
                    take = min(part_size - len(buffer), len(view))
                    buffer += view[:take]
                    view = view[take:]
                    total += take
            if before_publish is not None:
                before_publish()
            if upload is not None:
                upload.add(buffer)  # never empty: a part is flushed only when more bytes follow
                upload.complete()
                upload = None
            elif buffer or put_empty:
                key = key_for(object_start)
                written_keys.append(key)
                self._put(key, buffer)
        except BaseException:
            if upload is not None:
                upload.abort()
            raise
        return total

    def _read_segments(self, segments: list[_Segment]) -> Generator[bytes, None, None]:
        """Stream the bytes of ``segments`` in order, 1 MiB at a time."""
        for segment in segments:
            try:
                response = self.client.get_object(
                    Bucket=self.bucket,
                    Key=segment.key,
                    Range=f"bytes={segment.start}-{segment.start + segment.length - 1}",
                )
            except ClientError as exc:
                if _error_code(exc) in _MISSING_CODES:
                    raise StorageError(f"{segment.key} vanished while it was read") from None
                raise
            body = response["Body"]
            received = 0
            try:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    received += len(chunk)
                    yield chunk
            finally:
                body.close()
            if received != segment.length:
                raise StorageError(
                    f"{segment.key} gave {received} bytes from {segment.start}, "
                    f"not {segment.length}"
                )

    def _read_body(self, body: Any) -> Iterator[bytes]:
        """Stream a GetObject body 1 MiB at a time, closing it when done."""
        try:
            yield from body.iter_chunks(CHUNK_SIZE)
        finally:
            body.close()

    def _copy_segments(self, key: str, segments: list[_Segment]) -> bool:
        """Assemble ``key`` server-side from ``segments`` with a multipart copy.

        Segments over 5 GiB are split evenly.  Returns False, copying nothing,
        when S3's part rules forbid it (a part other than the last under 5 MiB,
        or more than 10,000 parts).
        """
        ranges: list[tuple[str, int, int]] = []
        for segment in segments:
            pieces = -(-segment.length // MAX_PART_SIZE)
            step = -(-segment.length // pieces)
            for at in range(0, segment.length, step):
                ranges.append((segment.key, segment.start + at, min(step, segment.length - at)))
        if not ranges or len(ranges) > MAX_PARTS:
            return False
        if any(length < MIN_PART_SIZE for _key, _start, length in ranges[:-1]):
            return False
        upload = _Multipart(self.client, self.bucket, key)
        try:
            for source_key, start, length in ranges:
                upload.add_copy(source_key, start, length)
            upload.complete()
        except BaseException:
            upload.abort()
            raise
        return True

    # --- upload sessions -----------------------------------------------------------------

    def _upload_base(self, upload_id: str) -> str:
        """Full key prefix (with the trailing slash) of an upload's objects."""
        return self._key(paths.upload_prefix(upload_id)) + "/"

    def _parts(self, upload_id: str) -> list[_Part]:
        """The stored pieces of an upload, by offset."""
        base = self._upload_base(upload_id)
        parts = []
        for key, size in self._list(base):
            name = key[len(base) :]
            if len(name) != 16 or "/" in name:
                continue
            try:
                offset = paths.offset_from_part_key(key)
            except ValueError:
                continue
            parts.append(_Part(offset, key, size))
        parts.sort()
        return parts

    @staticmethod
    def _tile(upload_id: str, parts: list[_Part], size: int) -> list[_Segment]:
        """The segments holding bytes [0, size) of an upload; pieces must be contiguous."""
        if not parts and size > 0:
            raise UploadMissing(upload_id)
        segments: list[_Segment] = []
        position = 0
        for part in parts:
            if position >= size:
                break
            if part.offset != position:
                raise StorageError(
                    f"upload {upload_id} has a piece at byte {part.offset}, expected {position}"
                )
            take = min(part.size, size - position)
            if take:
                segments.append(_Segment(part.key, 0, take, part.size))
            position += take
        if position < size:
            raise StorageError(f"upload {upload_id} holds {position} bytes, not {size}")
        return segments

    def upload_write(self, upload_id: str, offset: int, chunks: Iterable[bytes]) -> int:
        """Store ``chunks`` as the upload's piece at ``offset``; return how many bytes.

        Pieces at or after ``offset`` (from a write that died before it was
        acknowledged) are deleted first, and a piece reaching past ``offset``
        is cut back to it server-side.  Raises ``StorageError`` when the
        stored pieces do not end exactly at ``offset`` otherwise.
        """
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        parts = self._parts(upload_id)
        if offset > 0:
            segments = self._tile(upload_id, [p for p in parts if p.offset < offset], offset)
            last = segments[-1]
            if last.length < last.object_size and not self._copy_segments(last.key, [last]):
                raise StorageError(f"could not cut {last.key} back to {last.length} bytes")
        self._delete_keys(p.key for p in parts if p.offset >= offset)

        written_keys: list[str] = []
        try:
            return self._write_stream(
                chunks,
                lambda at: self._key(paths.upload_part_key(upload_id, offset + at)),
                part_size=self.part_size,
                max_object=self.max_piece_object,
                written_keys=written_keys,
            )
        except BaseException:
            self._delete_keys(written_keys)
            raise

    def upload_read(self, upload_id: str, size: int) -> Iterator[bytes]:
        """Stream the first ``size`` bytes of an upload, piece after piece.

        The pieces are listed (and checked to tile the range) at call time, so
        ``UploadMissing``/``StorageError`` come from this call, not the iteration.
        """
        return self._read_segments(self._tile(upload_id, self._parts(upload_id), size))

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
        segments = self._tile(upload_id, self._parts(upload_id), size)
        if self._head(key) is not None:
            # Verified even so: claiming a stored digest must take its bytes.
            if verify:
                self._verify_segments(segments, digest)
            self.upload_delete(upload_id)
            return False
        if verify:
            self._stream_commit(key, segments, size, digest)
        elif not segments:
            self._put(key, b"")
        elif len(segments) == 1 and segments[0].length == segments[0].object_size:
            # the managed copy switches to a multipart copy for big objects (> 5 GiB works)
            self.client.copy({"Bucket": self.bucket, "Key": segments[0].key}, self.bucket, key)
        elif not self._copy_segments(key, segments):
            self._stream_commit(key, segments, size, None)
        self.upload_delete(upload_id)
        return True

    def _verify_segments(self, segments: list[_Segment], digest: str) -> None:
        """Hash ``segments`` without storing anything; DigestMismatch if they are not ``digest``."""
        algorithm = paths.algorithm_of(digest)
        hasher = hashlib.new(algorithm)
        source = self._read_segments(segments)
        try:
            for chunk in source:
                hasher.update(chunk)
        finally:
            source.close()
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatch(digest, actual)

    def _stream_commit(
        self, key: str, segments: list[_Segment], size: int, digest: str | None
    ) -> None:
        """Re-upload ``segments`` as the object ``key``, checking ``digest`` if given.

        Parts grow past 8 MiB only for blobs over 10,000 x 8 MiB (78 GiB).
        """
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        source = self._read_segments(segments)
        stream: Iterable[bytes] = source
        check: Callable[[], None] | None = None
        if digest is not None:
            algorithm = paths.algorithm_of(digest)
            hasher = hashlib.new(algorithm)
            stream = _hashing(stream, hasher)

            def check() -> None:
                actual = f"{algorithm}:{hasher.hexdigest()}"
                if actual != digest:
                    raise DigestMismatch(digest, actual)

        try:
            self._write_stream(
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
        self._delete_keys(key for key, _size in self._list(base))
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

    # --- blobs ------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        """Size of the stored blob (a HEAD request), or None when it is not stored."""
        return self._head(self._key(paths.blob_key(digest)))

    def blob_open(self, digest: str, start: int = 0, length: int | None = None) -> BlobReader:
        """Open ``length`` bytes of a blob from ``start`` with one ranged GET.

        Raises ``BlobMissing`` when the blob is not stored and ``StorageError``
        when the range reaches past its end.  The reader has no ``file``.
        """
        if start < 0 or (length is not None and length < 0):
            raise StorageError(f"bad range: start {start}, length {length}")
        key = self._key(paths.blob_key(digest))
        if length == 0:
            size = self._head(key)
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
            code = _error_code(exc)
            if code in _MISSING_CODES:
                raise BlobMissing(digest) from None
            if code != "InvalidRange":
                raise
            # the range starts at or past the end: fine only for "the rest" from the very end
            size = self._head(key)
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
            size=size, length=length, chunks=self._read_body(body), file=None, close=body.close
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
            if _error_code(exc) not in _MISSING_CODES:
                raise

    def blob_digests(self) -> Iterator[str]:
        """Every digest stored, listed page by page."""
        skip = len(self.prefix) + 1 if self.prefix else 0
        for key, _size in self._list(self._key("blobs/")):
            digest = paths.digest_from_blob_key(key[skip:])
            if digest:
                yield digest
