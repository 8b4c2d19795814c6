"""Writing objects part by part: S3's multipart limits, one multipart upload, a streamed writer.

``write_stream`` turns a stream of chunks into objects while buffering at
most one part, with a single PUT when the stream fits one part and a
multipart upload (``Multipart``) otherwise.  An object appears only when its
PUT or multipart complete succeeds; a failed stream aborts its upload.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import StorageError
from .client import put_object

PART_SIZE = 8 << 20
"""Bytes buffered per multipart part: the bound on the memory a stream needs."""
MIN_PART_SIZE = 5 << 20
"""S3's smallest part, except for the last part of a multipart upload."""
MAX_PART_SIZE = 5 << 30
"""S3's largest part (and largest single-request copy)."""
MAX_PARTS = 10_000
"""S3's most parts per multipart upload."""


class Multipart:
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


def write_stream(
    client: Any,
    bucket: str,
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
    upload: Multipart | None = None
    buffer = bytearray()
    try:
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            while view:
                if len(buffer) == part_size:  # more bytes follow, so this is not the last part
                    if upload is None:
                        upload = Multipart(client, bucket, key_for(object_start))
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
            put_object(client, bucket, key, buffer)
    except BaseException:
        if upload is not None:
            upload.abort()
        raise
    return total
