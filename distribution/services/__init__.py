"""Writes of the distribution app: uploads, blobs, manifests and tags."""

from .blobs import blob_delete, blob_head, blob_mount
from .manifests import manifest_delete, manifest_put, tag_create
from .repositories import project_delete
from .uploads import (
    upload_append,
    upload_cancel,
    upload_complete,
    upload_get,
    upload_monolithic,
    upload_start,
)

__all__ = [
    "blob_delete",
    "blob_head",
    "blob_mount",
    "manifest_delete",
    "manifest_put",
    "project_delete",
    "tag_create",
    "upload_append",
    "upload_cancel",
    "upload_complete",
    "upload_get",
    "upload_monolithic",
    "upload_start",
]
