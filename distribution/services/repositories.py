"""Repository rows and blob links, shared by the upload and manifest services."""

from __future__ import annotations

from ..models import Blob, Repository, RepositoryBlob


def repository_for_push(name: str) -> Repository:
    """The repository a push writes to, created by the first push."""
    repository, _ = Repository.objects.get_or_create(name=name)
    return repository


def blob_link(*, repository: Repository, digest: str, size: int) -> Blob:
    """Record a stored blob and let ``repository`` see it (idempotent)."""
    blob, _ = Blob.objects.get_or_create(digest=digest, defaults={"size": size})
    RepositoryBlob.objects.get_or_create(repository=repository, blob=blob)
    return blob
