"""The stored pieces of an upload: listing them, tiling a byte range, reading and copying it.

An upload is a set of objects ``uploads/<session>/<offset, 16 hex>``, each
the piece written at that offset (``Part``).  ``tile`` checks that the
pieces are contiguous and turns the first ``size`` bytes into ``Segment``s
(byte ranges of objects), which ``read_segments`` streams and
``copy_segments`` assembles server-side into one object.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from .. import paths
from ..base import CHUNK_SIZE
from ..errors import StorageError, UploadMissing
from .client import MISSING_CODES, error_code, list_objects
from .multipart import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, Multipart


class Part(NamedTuple):
    """One stored object of an upload: the piece starting at ``offset``."""

    offset: int
    key: str
    size: int


class Segment(NamedTuple):
    """``length`` bytes from ``start`` of the object ``key``, which holds ``object_size``."""

    key: str
    start: int
    length: int
    object_size: int


def list_parts(client: Any, bucket: str, base: str) -> list[Part]:
    """The stored pieces of the upload whose full key prefix (with the slash) is ``base``."""
    parts = []
    for key, size in list_objects(client, bucket, base):
        name = key[len(base) :]
        if len(name) != 16 or "/" in name:
            continue
        try:
            offset = paths.offset_from_part_key(key)
        except ValueError:
            continue
        parts.append(Part(offset, key, size))
    parts.sort()
    return parts


def tile(upload_id: str, parts: list[Part], size: int) -> list[Segment]:
    """The segments holding bytes [0, size) of an upload; pieces must be contiguous."""
    if not parts and size > 0:
        raise UploadMissing(upload_id)
    segments: list[Segment] = []
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
            segments.append(Segment(part.key, 0, take, part.size))
        position += take
    if position < size:
        raise StorageError(f"upload {upload_id} holds {position} bytes, not {size}")
    return segments


def read_segments(
    client: Any, bucket: str, segments: list[Segment]
) -> Generator[bytes, None, None]:
    """Stream the bytes of ``segments`` in order, 1 MiB at a time."""
    for segment in segments:
        try:
            response = client.get_object(
                Bucket=bucket,
                Key=segment.key,
                Range=f"bytes={segment.start}-{segment.start + segment.length - 1}",
            )
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
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
                f"{segment.key} gave {received} bytes from {segment.start}, not {segment.length}"
            )


def copy_segments(client: Any, bucket: str, key: str, segments: list[Segment]) -> bool:
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
    upload = Multipart(client, bucket, key)
    try:
        for source_key, start, length in ranges:
            upload.add_copy(source_key, start, length)
        upload.complete()
    except BaseException:
        upload.abort()
        raise
    return True
