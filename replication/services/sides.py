"""The two sides of a copy: the local registry or a remote one, as source or destination.

Push replication reads local manifests from the database and blobs from the
blob store and writes to a remote registry; pull replication reads a remote
registry and writes through the distribution services, so quotas, GC touches
and the audit log apply as for any push (and no ``artifact_pushed`` signal: a
replicated write triggers no replication).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from distribution import selectors
from distribution.blobstore import blob_store
from distribution.exceptions import BlobUnknown
from distribution.models import Manifest, Repository, RepositoryBlob, Tag
from distribution.services.blobs import blob_head, blob_mount
from distribution.services.manifests import manifest_put
from distribution.services.uploads import upload_monolithic
from distribution.storage import StorageError
from rbac.sealing import SealBroken

from ..client import AuthError, RegistryClient, ReplicationError
from ..models import RegistryEndpoint


def client_for(endpoint: RegistryEndpoint) -> RegistryClient:
    try:
        password = endpoint.secret
    except SealBroken:
        raise AuthError(
            f"the stored password of registry {endpoint.name!r} cannot be opened (SECRET_KEY "
            "changed?): set it again"
        ) from None
    return RegistryClient(
        endpoint.url, username=endpoint.username, password=password, verify_tls=endpoint.verify_tls
    )


def endpoint_test(*, endpoint: RegistryEndpoint) -> None:
    """Check that the endpoint answers and accepts its credentials; ReplicationError if not."""
    client_for(endpoint).ping()


class Source(Protocol):
    def repositories(self) -> list[str]: ...
    def tags(self, repository: str) -> list[str]: ...
    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]: ...
    def referrers(self, repository: str, digest: str) -> list[str]: ...
    def blob(
        self, repository: str, digest: str
    ) -> AbstractContextManager[tuple[Iterator[bytes], int]]: ...


class Destination(Protocol):
    def tag_digest(self, repository: str, tag: str) -> str | None: ...
    def has_blob(self, repository: str, digest: str) -> bool: ...
    def mount(self, repository: str, digest: str) -> bool: ...
    def put_blob(
        self, repository: str, digest: str, chunks: Iterable[bytes], size: int
    ) -> None: ...
    def put_manifest(
        self, repository: str, reference: str, body: bytes, media_type: str
    ) -> None: ...
    def delete(self, repository: str, reference: str) -> bool: ...


class LocalSource:
    def repositories(self) -> list[str]:
        return list(Repository.objects.order_by("name").values_list("name", flat=True))

    def tags(self, repository: str) -> list[str]:
        return list(
            Tag.objects.filter(repository__name=repository)
            .order_by("name")
            .values_list("name", flat=True)
        )

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        manifests = Manifest.objects.filter(repository__name=repository)
        if ":" in reference:
            manifest = manifests.filter(digest=reference).first()
        else:
            manifest = manifests.filter(tags__name=reference).first()
        if manifest is None:
            raise ReplicationError(f"{repository}:{reference} is not stored here any more")
        return bytes(manifest.body), manifest.media_type

    def referrers(self, repository: str, digest: str) -> list[str]:
        index = selectors.referrers(repository_name=repository, digest=digest, artifact_type=None)
        return [m["digest"] for m in index["manifests"]]

    @contextmanager
    def blob(self, repository: str, digest: str) -> Iterator[tuple[Iterator[bytes], int]]:
        try:
            reader = blob_store().blob_open(digest)
        except StorageError as error:
            raise ReplicationError(
                f"blob {digest} of {repository} cannot be read: {error}"
            ) from None
        try:
            yield reader.chunks, reader.size
        finally:
            reader.close()


class RemoteSource:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def repositories(self) -> list[str]:
        return self.client.catalog()

    def tags(self, repository: str) -> list[str]:
        return self.client.tags(repository)

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        return self.client.manifest_get(repository, reference)

    def referrers(self, repository: str, digest: str) -> list[str]:
        return self.client.referrers(repository, digest)

    def blob(
        self, repository: str, digest: str
    ) -> AbstractContextManager[tuple[Iterator[bytes], int]]:
        return self.client.blob_get(repository, digest)


class LocalDestination:
    def tag_digest(self, repository: str, tag: str) -> str | None:
        return (
            Tag.objects.filter(repository__name=repository, name=tag)
            .values_list("manifest__digest", flat=True)
            .first()
        )

    def has_blob(self, repository: str, digest: str) -> bool:
        try:
            blob_head(repository_name=repository, digest=digest)
        except BlobUnknown:
            return False
        return True

    def mount(self, repository: str, digest: str) -> bool:
        other = (
            RepositoryBlob.objects.filter(blob__digest=digest)
            .values_list("repository__name", flat=True)
            .first()
        )
        if other is None:
            return False
        return blob_mount(repository_name=repository, digest=digest, from_name=other) is not None

    def put_blob(self, repository: str, digest: str, chunks: Iterable[bytes], size: int) -> None:
        upload_monolithic(repository_name=repository, digest=digest, chunks=chunks)

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> None:
        manifest_put(
            repository_name=repository,
            reference=reference,
            content_type=media_type,
            body=body,
            replicated=True,
        )

    def delete(self, repository: str, reference: str) -> bool:
        raise ReplicationError("deletion replication is for push policies only")


class RemoteDestination:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.seen: dict[str, str] = {}  # digest -> a destination repository that has it

    def tag_digest(self, repository: str, tag: str) -> str | None:
        return self.client.manifest_digest(repository, tag)

    def has_blob(self, repository: str, digest: str) -> bool:
        found = self.client.blob_exists(repository, digest)
        if found:
            self.seen[digest] = repository
        return found

    def mount(self, repository: str, digest: str) -> bool:
        other = self.seen.get(digest)
        if other is None or other == repository:
            return False
        return self.client.blob_mount(repository, digest, other)

    def put_blob(self, repository: str, digest: str, chunks: Iterable[bytes], size: int) -> None:
        self.client.blob_upload(repository, digest, chunks, size)
        self.seen[digest] = repository

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> None:
        self.client.manifest_put(repository, reference, body, media_type)

    def delete(self, repository: str, reference: str) -> bool:
        return self.client.manifest_delete(repository, reference)
