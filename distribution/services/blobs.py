"""Blob links: cross-repository mounts and deletes."""

from __future__ import annotations

from django.db import transaction

from audit.services import SYSTEM, Actor, audit_record

from ..exceptions import BlobUnknown
from ..models import Blob, RepositoryBlob
from .repositories import blob_link, repository_for_push


def blob_mount(*, repository_name: str, digest: str, from_name: str) -> Blob | None:
    """Let ``repository_name`` see a blob that ``from_name`` has, without copying a byte.

    Returns None when the source does not have the blob (the caller falls back
    to a plain upload, as the spec says).
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
