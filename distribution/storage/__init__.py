"""Blob storage: a byte-level, tenant-blind store of content-addressed blobs.

A leaf package: it imports nothing from the rest of harborpy and nothing from
Django.  Which repository may see a blob is a row in the database, never a
copy here.  ``open_store(url)`` picks the backend from a storage URL.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .base import BlobReader, BlobStore, hashing
from .errors import BlobMissing, DigestMismatch, StorageError, UploadMissing

__all__ = [
    "BlobMissing",
    "BlobReader",
    "BlobStore",
    "DigestMismatch",
    "StorageError",
    "UploadMissing",
    "hashing",
    "open_store",
]


def open_store(url: str, *, fsync: bool = True) -> BlobStore:
    """Open the blob store a storage URL names.

    ``file:///var/lib/harborpy`` is a folder on local disk or an NFS mount;
    ``s3://bucket/prefix?endpoint=http://host:9000&region=us-east-1`` is any
    S3-compatible object store (credentials from the usual AWS variables, or
    ``access_key``/``secret_key`` in the query).
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        from .filesystem import FilesystemStore

        return FilesystemStore(parts.path, fsync=fsync)
    if parts.scheme == "s3":
        from .s3 import S3Store

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return S3Store(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=query.get("endpoint"),
            region=query.get("region"),
            access_key=query.get("access_key"),
            secret_key=query.get("secret_key"),
        )
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} in {url!r}")
