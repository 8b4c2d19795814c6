"""Writes of the distribution app: uploads, blobs, manifests, tags, artifacts and labels."""

from .artifacts import artifact_delete, repository_delete, tag_create, tag_delete
from .blobs import blob_delete, blob_head, blob_mount
from .labels import (
    artifact_label_add,
    artifact_label_remove,
    label_create,
    label_delete,
    label_update,
)
from .manifests import manifest_delete, manifest_put
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
    "artifact_delete",
    "artifact_label_add",
    "artifact_label_remove",
    "blob_delete",
    "blob_head",
    "blob_mount",
    "label_create",
    "label_delete",
    "label_update",
    "manifest_delete",
    "manifest_put",
    "project_delete",
    "repository_delete",
    "tag_create",
    "tag_delete",
    "upload_append",
    "upload_cancel",
    "upload_complete",
    "upload_get",
    "upload_monolithic",
    "upload_start",
]
