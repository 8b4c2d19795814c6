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

Modules: ``client`` (the boto3 client on a shared session, error codes, plain
object requests), ``multipart`` (S3's part limits, one multipart upload, the
streamed writer), ``pieces`` (listing and tiling an upload's pieces, reading
and server-side copying of the tiled segments) and ``store`` (``S3Store``).
"""

from __future__ import annotations

from .client import DELETE_BATCH
from .multipart import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, PART_SIZE
from .store import MAX_PIECE_OBJECT, S3Store

__all__ = [
    "DELETE_BATCH",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MAX_PIECE_OBJECT",
    "MIN_PART_SIZE",
    "PART_SIZE",
    "S3Store",
]
