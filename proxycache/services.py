"""The pull-through cache: what a read of a proxy-cache project does on a miss.

Manifests: a digest is served from the cache once stored (its bytes cannot
change).  A tag is served from the cache while it is fresh
(``HARBORPY_PROXY_MANIFEST_TTL`` seconds since it was last confirmed); after
that the upstream is asked with a HEAD (which registries with pull limits do
not count), and the manifest fetched again only if the tag moved.  An index
is stored at once; each child manifest is fetched when a client asks for it
(``AbsentChild`` until then), as a client pulls one platform of many.  When the upstream
cannot be reached, whatever is cached is served; when it says a tag is gone,
the tag is gone here too (404), though its cached content stays until
retention or garbage collection removes it.

Blobs: the first read streams the upstream's bytes to the client while they
are stored (``BlobFill``), verified against the digest; a read that breaks
off stores nothing.  Manifests are stored before their blobs: each blob not
yet here is remembered (``AbsentBlob``) and attached to its manifests when it
arrives (as a child manifest is to its indexes), so garbage collection never
takes cached content that a cached manifest needs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Generator, Iterable, Iterator

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from audit.services import Actor
from distribution import selectors
from distribution.exceptions import (
    BlobUnknown,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    Unavailable,
)
from distribution.grammar import is_digest
from distribution.manifests import INDEX_TYPES
from distribution.models import Blob, BlobState, Manifest, Repository, RepositoryBlob, Tag
from distribution.services.manifests import manifest_put
from distribution.services.repositories import blob_link, cache_fill, repository_for_push
from distribution.services.uploads import upload_monolithic
from replication.client import AuthError, RemoteError, ReplicationError

from .models import AbsentBlob, AbsentChild
from .upstream import Upstream

logger = logging.getLogger(__name__)

CACHE_ACTOR = Actor("proxy-cache")
# After the upstream failed to answer, serve the cached tag this long before asking again.
RETRY_UPSTREAM_AFTER = 30
# Chunks a blob fill may hold between the client's stream and the store (bounded memory).
FILL_QUEUE = 8


# --- manifests -----------------------------------------------------------------------------


def manifest_read(
    upstream: Upstream, *, name: str, reference: str, accept: list[str], with_body: bool = True
) -> Manifest:
    """The manifest ``reference`` names in a proxy-cache repository, fetched if need be."""
    local = _local_manifest(upstream, name, reference, accept, with_body)
    if local is not None and (is_digest(reference) or cache.get(_fresh_key(name, reference))):
        return local
    try:
        if local is not None:
            current = upstream.client.manifest_head(upstream.repository, reference)
            if current is None:
                raise ManifestUnknown(
                    "manifest unknown: the upstream registry no longer has this tag",
                    detail={"reference": reference},
                )
            if current and current == _tag_digest(name, reference):  # "": no digest given
                _mark_fresh(name, reference, settings.HARBORPY_PROXY_MANIFEST_TTL)
                return local
        manifest_fetch(upstream, name=name, reference=reference)
    except AuthError as error:
        return _stale_or(local, name, reference, upstream, error)
    except RemoteError as error:
        if error.status == 404:
            raise ManifestUnknown(
                "manifest unknown to this registry and to its upstream",
                detail={"reference": reference, "upstream": upstream.endpoint_name},
            ) from None
        return _stale_or(local, name, reference, upstream, error)
    except ReplicationError as error:  # unreachable, timed out, 5xx
        return _stale_or(local, name, reference, upstream, error)
    except (ManifestUnknown, NameUnknown):
        raise
    except RegistryError as error:  # storing the new one failed here (quota, immutable tag)
        if local is None:
            raise
        logger.warning("proxy cache: keeping the cached %s:%s: %s", name, reference, error)
        return local
    if not is_digest(reference):
        _mark_fresh(name, reference, settings.HARBORPY_PROXY_MANIFEST_TTL)
    return _manifest_get(upstream, name, reference, accept, with_body)


def manifest_fetch(upstream: Upstream, *, name: str, reference: str) -> Manifest:
    """Fetch ``reference`` from the upstream and store it, with what it refers to that is
    not here yet remembered (blobs, an index's children), and attached to the indexes that
    wait for it."""
    body, media_type = upstream.client.manifest_get(upstream.repository, reference)
    with cache_fill(), transaction.atomic():
        # Blobs stored for other repositories are not linked here: only a read of the blob,
        # once the upstream confirms it has it, may do that (blob_local).
        manifest = manifest_put(
            repository_name=name,
            reference=reference,
            content_type=media_type,
            body=body,
            actor=CACHE_ACTOR,
            absent_ok=True,
            replicated=True,  # a fill is no push: no replication events
        )
        absent: list[str] = getattr(manifest, "absent", [])
        absent_children: list[str] = getattr(manifest, "missing_children", [])
        AbsentBlob.objects.bulk_create(
            [AbsentBlob(manifest=manifest, digest=digest) for digest in absent],
            ignore_conflicts=True,
        )
        AbsentChild.objects.bulk_create(
            [AbsentChild(index=manifest, digest=digest) for digest in absent_children],
            ignore_conflicts=True,
        )
        _adopt(manifest.repository, [manifest.digest])
    # Both sides look again once committed: a fill or a child fetch that ran alongside may
    # have looked for waiting rows before this transaction's were visible, and this one
    # for its indexes before theirs were.
    with transaction.atomic():
        if absent:
            _attach(manifest.repository, absent)
        _adopt(manifest.repository, [manifest.digest, *absent_children])
    return manifest


def referrers_read(upstream: Upstream, *, name: str, digest: str) -> None:
    """Bring the upstream's referrers of ``digest`` (signatures, SBOMs) into the cache.

    Asked again after the TTL, as a tag is; when the upstream cannot answer, the
    referrers cached so far are what the client gets.
    """
    key = _fresh_key(name, f"referrers:{digest}")
    if cache.get(key):
        return
    try:
        found = [d for d in upstream.client.referrers(upstream.repository, digest) if is_digest(d)]
        have = set(
            Manifest.objects.filter(repository__name=name, digest__in=found).values_list(
                "digest", flat=True
            )
        )
        for referrer in found:
            if referrer in have:
                continue
            try:
                manifest_fetch(upstream, name=name, reference=referrer)
            except RegistryError as error:  # this one cannot be stored: the others still
                logger.warning("proxy cache: referrer %s of %s: %s", referrer, digest, error)
    except ReplicationError as error:
        logger.warning(
            "proxy cache: referrers of %s@%s from %s: %s",
            name,
            digest,
            upstream.endpoint_name,
            error,
        )
        _mark_fresh(name, f"referrers:{digest}", RETRY_UPSTREAM_AFTER)
        return
    _mark_fresh(name, f"referrers:{digest}", settings.HARBORPY_PROXY_MANIFEST_TTL)


def _local_manifest(
    upstream: Upstream, name: str, reference: str, accept: list[str], with_body: bool
) -> Manifest | None:
    try:
        return _manifest_get(upstream, name, reference, accept, with_body)
    except (ManifestUnknown, NameUnknown):
        return None


def _manifest_get(
    upstream: Upstream, name: str, reference: str, accept: list[str], with_body: bool
) -> Manifest:
    """The stored manifest, as for any project; for a client that cannot take an index
    under a tag, its linux/amd64 child, fetched first if the cache does not have it yet."""
    try:
        return selectors.manifest_get(
            repository_name=name, reference=reference, accept=accept, with_body=with_body
        )
    except ManifestUnknown:
        if not _default_child_fetched(upstream, name, reference):
            raise
    return selectors.manifest_get(
        repository_name=name, reference=reference, accept=accept, with_body=with_body
    )


def _default_child_fetched(upstream: Upstream, name: str, reference: str) -> bool:
    """Fetch the default child of the index tag ``reference`` names when it is absent."""
    if is_digest(reference):
        return False
    index = Manifest.objects.filter(
        repository__name=name, tags__name=reference, media_type__in=INDEX_TYPES
    ).first()
    digest = selectors.default_platform_digest(index) if index is not None else None
    if index is None or digest is None or not index.absent_children.filter(digest=digest).exists():
        return False
    try:
        manifest_fetch(upstream, name=name, reference=digest)
    except RemoteError as error:
        if error.status == 404:
            return False  # the upstream's index names a manifest it does not have
        raise _not_cached(name, digest, upstream, error) from None
    except ReplicationError as error:
        raise _not_cached(name, digest, upstream, error) from None
    return True


def _tag_digest(name: str, tag: str) -> str | None:
    return (
        Tag.objects.filter(repository__name=name, name=tag)
        .values_list("manifest__digest", flat=True)
        .first()
    )


def _fresh_key(name: str, reference: str) -> str:
    return f"proxycache:fresh:{name}:{reference}"


def _mark_fresh(name: str, reference: str, seconds: int) -> None:
    if seconds > 0:
        cache.set(_fresh_key(name, reference), True, seconds)


def _stale_or(
    local: Manifest | None, name: str, reference: str, upstream: Upstream, error: Exception
) -> Manifest:
    """The cached manifest when the upstream failed; without one, 503 for the client."""
    if local is not None:
        logger.warning(
            "proxy cache: serving cached %s:%s, upstream %s failed: %s",
            name,
            reference,
            upstream.endpoint_name,
            error,
        )
        _mark_fresh(
            name, reference, min(RETRY_UPSTREAM_AFTER, settings.HARBORPY_PROXY_MANIFEST_TTL)
        )
        return local
    raise _not_cached(name, reference, upstream, error)


def _not_cached(name: str, reference: str, upstream: Upstream, error: Exception) -> Unavailable:
    return Unavailable(
        f"{name}:{reference} is not cached and the upstream registry "
        f"{upstream.endpoint_name!r} did not answer: {error}",
        retry_after=RETRY_UPSTREAM_AFTER,
        detail={"upstream": upstream.endpoint_name},
    )


# --- blobs ---------------------------------------------------------------------------------


def blob_local(upstream: Upstream, *, name: str, digest: str) -> bool:
    """Whether repository ``name`` can serve blob ``digest`` from here.

    A blob stored for another repository (of any project) is linked into this
    one on the way, so a layer is fetched from the upstream once per registry;
    but only once the upstream says it has that blob too: otherwise anyone who
    may pull from the cache could read any project's blob by its digest.
    """
    try:
        selectors.blob_get(repository_name=name, digest=digest)
        return True
    except BlobUnknown:
        pass
    size = (
        Blob.objects.filter(digest=digest, state__in=[BlobState.ACTIVE, BlobState.MARKED])
        .values_list("size", flat=True)
        .first()
    )
    if size is None:
        return False
    try:
        if upstream.client.blob_size(upstream.repository, digest) is None:
            return False  # the upstream has no such blob: neither does this repository
    except ReplicationError:
        return False  # cannot tell: the fill will answer 503, as for any miss now
    with cache_fill(), transaction.atomic():
        repository = repository_for_push(name)
        return bool(_link_stored(repository, [digest]))


def blob_size(upstream: Upstream, *, digest: str) -> int:
    """The size of a blob the upstream has (for a HEAD); BlobUnknown if it has none."""
    try:
        size = upstream.client.blob_size(upstream.repository, digest)
    except ReplicationError as error:
        raise _unavailable(upstream, digest, error) from None
    if size is None:
        raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
    return size


class BlobFill:
    """The upstream's bytes of one blob, for the client and for the store at once.

    Iterating it yields each chunk as it arrives from the upstream; a thread
    stores the same chunks through an ordinary upload (digest verified, quota
    applied).  A client that stops reading abandons the fill: nothing is stored.
    """

    def __init__(self, upstream: Upstream, *, name: str, digest: str) -> None:
        self.name, self.digest, self.upstream = name, digest, upstream
        try:
            self._response = upstream.client.blob_get(upstream.repository, digest)
            self._chunks, self.size = self._response.__enter__()
        except RemoteError as error:
            if error.status == 404:
                raise BlobUnknown("blob unknown to registry", detail={"digest": digest}) from None
            raise _unavailable(upstream, digest, error) from None
        except ReplicationError as error:
            raise _unavailable(upstream, digest, error) from None
        self._queue: queue.Queue[bytes | None] = queue.Queue(FILL_QUEUE)
        self._failed = threading.Event()
        self._thread = threading.Thread(target=self._store, name=f"fill {digest[:19]}", daemon=True)
        self._started = False
        self._stream: Generator[bytes, None, None] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._stream = self._flow()
        return self._stream

    def close(self) -> None:
        """Called by the server when it is done with the response, read to the end or not."""
        if self._started and self._stream is not None:
            self._stream.close()  # its finally: abandon or finish the store
        else:  # the body was never read: let go of the upstream's connection
            self._response.__exit__(None, None, None)

    def _flow(self) -> Generator[bytes, None, None]:
        self._started = True
        self._thread.start()
        finished = False
        try:
            for chunk in self._chunks:
                self._hand(chunk)
                yield chunk
            finished = True
        finally:
            self._response.__exit__(None, None, None)
            self._hand(None if finished else b"")  # b"": abandon
            self._thread.join(timeout=60)

    def _hand(self, chunk: bytes | None) -> None:
        while not self._failed.is_set():
            try:
                self._queue.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    def _chunks_for_store(self) -> Iterator[bytes]:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if chunk == b"":
                raise _Abandoned
            yield chunk

    def _store(self) -> None:
        try:
            with cache_fill():
                upload_monolithic(
                    repository_name=self.name, digest=self.digest, chunks=self._chunks_for_store()
                )
                absent_arrived(name=self.name, digest=self.digest)
        except _Abandoned:
            logger.info("proxy cache: %s@%s abandoned by its client", self.name, self.digest)
            self._failed.set()
        except Exception:  # a registry error (quota, digest) or a broken store: logged
            logger.exception("proxy cache: storing %s@%s failed", self.name, self.digest)
            self._failed.set()
        finally:
            connection.close()  # this thread's own connection


class _Abandoned(Exception):
    """The client stopped reading before the blob's end."""


def absent_arrived(*, name: str, digest: str) -> None:
    """Attach a blob that has just arrived to the cached manifests that wait for it."""
    with transaction.atomic():
        repository = Repository.objects.filter(name=name).first()
        if repository is not None:
            _link_stored(repository, [digest])


def _link_stored(repository: Repository, digests: list[str]) -> list[str]:
    """Link the blobs among ``digests`` stored here already into ``repository`` (within its
    quota), and attach them to its manifests that wait for them.  Returns those linked.

    The caller has made sure the repository may have them: it fetched them for it, or the
    upstream confirmed it has them (blob_local)."""
    stored = dict(
        Blob.objects.filter(
            digest__in=digests, state__in=[BlobState.ACTIVE, BlobState.MARKED]
        ).values_list("digest", "size")
    )
    linked = [
        digest
        for digest, size in stored.items()
        if blob_link(repository=repository, digest=digest, size=size) is not None
    ]
    _attach(repository, linked)
    return linked


def _attach(repository: Repository, digests: list[str]) -> None:
    """Attach the blobs among ``digests`` that ``repository`` holds to its cached manifests
    that wait for them (their AbsentBlob rows go)."""
    held = dict(
        RepositoryBlob.objects.filter(repository=repository, blob__digest__in=digests).values_list(
            "blob__digest", "blob_id"
        )
    )
    if not held:
        return
    waiting = AbsentBlob.objects.filter(manifest__repository=repository, digest__in=list(held))
    _lock_manifests(waiting.values_list("manifest_id", flat=True))
    through = Manifest.blobs.through
    through.objects.bulk_create(
        [
            through(manifest_id=m, blob_id=held[d])
            for m, d in waiting.values_list("manifest_id", "digest")
        ],
        ignore_conflicts=True,
    )
    waiting.delete()


def _adopt(repository: Repository, digests: list[str]) -> None:
    """Attach the manifests among ``digests`` that ``repository`` holds to its cached indexes
    that wait for them as children (their AbsentChild rows go)."""
    if not digests:
        return
    waiting = AbsentChild.objects.filter(index__repository=repository, digest__in=digests)
    if not waiting.exists():
        return
    # Locked as a push of the index locks them (children, then the index), so a fetch of
    # the index alongside waits here instead of deadlocking; a child garbage collection
    # took meanwhile is not attached.
    held = dict(
        Manifest.objects.select_for_update()
        .filter(repository=repository, digest__in=digests)
        .order_by("pk")
        .values_list("digest", "pk")
    )
    waiting = waiting.filter(digest__in=list(held))
    _lock_manifests(waiting.values_list("index_id", flat=True))
    through = Manifest.children.through
    through.objects.bulk_create(
        [
            through(from_manifest_id=i, to_manifest_id=held[d])
            for i, d in waiting.values_list("index_id", "digest")
        ],
        ignore_conflicts=True,
    )
    waiting.delete()


def _lock_manifests(ids: Iterable[int]) -> None:
    """Lock the manifest rows ``ids`` in key order (a fetch storing one of them again
    holds its row: waiting for it here keeps their AbsentBlob/AbsentChild rows consistent)."""
    list(
        Manifest.objects.select_for_update()
        .filter(pk__in=sorted(set(ids)))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _unavailable(upstream: Upstream, digest: str, error: Exception) -> Unavailable:
    return Unavailable(
        f"blob {digest} is not cached and the upstream registry "
        f"{upstream.endpoint_name!r} did not answer: {error}",
        retry_after=RETRY_UPSTREAM_AFTER,
        detail={"digest": digest, "upstream": upstream.endpoint_name},
    )
