"""Blob links: cross-repository mounts and deletes."""

from __future__ import annotations

from django.db import transaction

from audit.services import SYSTEM, Actor, audit_record

from ..exceptions import BlobUnknown
from ..grammar import check_digest
from ..models import Blob, RepositoryBlob
from .repositories import blob_link, blobs_touch, repository_for_push


def blob_head(*, repository_name: str, digest: str) -> Blob:
    """Blob ``digest`` as a repository sees it, touched: a client asking is about to use it.

    Clients HEAD a blob to skip uploading it, so this keeps it from garbage
    collection as a push would; BlobUnknown if the repository may not see it
    or the collector is deleting it (the client then uploads it again).
    """
    check_digest(digest)
    touched = blobs_touch(digests=[digest], repository_name=repository_name)
    if not touched:
        raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
    return touched[0]


def blob_mount(*, repository_name: str, digest: str, from_name: str) -> Blob | None:
    """Let ``repository_name`` see a blob that ``from_name`` has, without copying a byte.

    Returns None when the source does not have the blob, or garbage collection
    is deleting it (the caller falls back to a plain upload, as the spec says).
    """
    source = (
        RepositoryBlob.objects.filter(repository__name=from_name, blob__digest=digest)
        .select_related("blob")
        .first()
    )
    if source is None:
        return None
    with transaction.atomic():
        repository = repository_for_push(repository_name)
        return blob_link(repository=repository, digest=digest, size=source.blob.size)


def blob_delete(*, repository_name: str, digest: str, actor: Actor = SYSTEM) -> None:
    """Remove a blob from a repository; the bytes go when garbage collection finds them unused."""
    with transaction.atomic():
        deleted, _ = RepositoryBlob.objects.filter(
            repository__name=repository_name, blob__digest=digest
        ).delete()
        if not deleted:
            raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
        audit_record(
            actor=actor,
            action="delete",
            resource=f"{repository_name}@{digest}",
            detail={"kind": "blob"},
        )
