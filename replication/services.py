"""Replication services: test an endpoint, start and run executions.

A run lists the source's repositories and tags that match the policy's filters,
records one Task per tag, and copies each: blobs first (skipped when the
destination has them, mounted when it has them in another repository we know
of), an index's children by digest, then the tagged manifest, byte for byte.
Push replication reads local manifests from the database and blobs from the
blob store; pull replication writes through the distribution services, so
quotas, GC touches and the audit log apply as for any push.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Protocol, TypeVar

from django.db import transaction
from django.utils import timezone

from distribution import selectors
from distribution.blobstore import blob_store
from distribution.exceptions import BlobUnknown, RegistryError
from distribution.manifests import INDEX_TYPES, parse_manifest
from distribution.models import Manifest, Repository, RepositoryBlob, Tag
from distribution.patterns import PatternInvalid, glob_match
from distribution.services.blobs import blob_head, blob_mount
from distribution.services.manifests import manifest_put
from distribution.services.uploads import upload_monolithic
from distribution.storage import StorageError

from .client import RegistryClient, ReplicationError, TransientError
from .models import Direction, Execution, RegistryEndpoint, ReplicationPolicy, Status, Task

logger = logging.getLogger(__name__)

RETRIES = 3  # attempts per step on transient errors
BACKOFF = 0.5  # seconds, doubled after each failed attempt
# A task that has not finished after this long fails before its next step (a manifest or
# blob); a blob being streamed is not cut off (each HTTP read has its own timeout).
TASK_TIMEOUT = 3600.0

T = TypeVar("T")
Progress = Callable[[str], None]


def client_for(endpoint: RegistryEndpoint) -> RegistryClient:
    return RegistryClient(
        endpoint.url,
        username=endpoint.username,
        password=endpoint.password,
        verify_tls=endpoint.verify_tls,
    )


def endpoint_test(*, endpoint: RegistryEndpoint) -> None:
    """Check that the endpoint answers and accepts its credentials; ReplicationError if not."""
    client_for(endpoint).ping()


# --- sides of a copy -----------------------------------------------------------------------


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
            repository_name=repository, reference=reference, content_type=media_type, body=body
        )


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


class PolicyDisabled(ReplicationError):
    """A disabled policy was asked to run."""


# --- executions ----------------------------------------------------------------------------


def execution_create(*, policy: ReplicationPolicy, trigger: str = "manual") -> Execution:
    """Record a pending execution of ``policy`` (run it with execution_run).

    A disabled policy is not run: PolicyDisabled.
    """
    if not policy.enabled:
        raise PolicyDisabled(f"replication policy {policy.name!r} is disabled")
    return Execution.objects.create(policy=policy, trigger=trigger)


def execution_start(*, policy: ReplicationPolicy, trigger: str = "manual") -> Execution:
    """Record an execution and hand it to a worker once the transaction commits."""
    from .tasks import run_execution  # the task module imports this one

    with transaction.atomic():
        execution = execution_create(policy=policy, trigger=trigger)
        transaction.on_commit(lambda: run_execution.delay(execution.pk))
    return execution


def destination_name(policy: ReplicationPolicy, source: str) -> str:
    """The source repository's name under the policy's destination namespace, if any."""
    if not policy.destination_namespace:
        return source
    rest = source.split("/", 1)[1] if "/" in source else source
    return f"{policy.destination_namespace.strip('/')}/{rest}"


def _matches(pattern: str, name: str) -> bool:
    """Doublestar globs as elsewhere: ``*`` within a path segment, ``**`` across them."""
    return not pattern or glob_match(pattern, name)


def _retrying(what: str, call: Callable[[], T]) -> T:
    delay = BACKOFF
    for attempt in range(RETRIES):
        try:
            return call()
        except TransientError as error:
            if attempt == RETRIES - 1:
                raise TransientError(f"{error} (gave up after {RETRIES} attempts)") from None
            logger.info("replication: %s failed transiently; retrying in %.1fs", what, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def execution_run(*, execution_id: int, progress: Progress | None = None) -> Execution:
    """Carry out a pending execution; a second call on the same execution does nothing."""
    say = progress or (lambda line: None)
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update()
            .select_related("policy__endpoint")
            .get(pk=execution_id)
        )
        if execution.status != Status.PENDING:
            return execution
        execution.status = Status.RUNNING
        execution.started_at = timezone.now()
        execution.save(update_fields=["status", "started_at"])
    policy = execution.policy
    client = client_for(policy.endpoint)
    source: Source
    destination: Destination
    if policy.direction == Direction.PUSH:
        source, destination = LocalSource(), RemoteDestination(client)
    else:
        source, destination = RemoteSource(client), LocalDestination()
    try:
        tasks = _plan(execution, policy, source)
    except (ReplicationError, RegistryError, PatternInvalid) as error:
        return _finish(execution, error=f"listing the source failed: {error}", say=say)
    except Exception as error:  # a bug: recorded, so that the execution does not stay running
        logger.exception("replication execution %s failed", execution.pk)
        return _finish(execution, error=f"{type(error).__name__}: {error}", say=say)
    say(f"execution {execution.pk}: {len(tasks)} tag(s) to replicate")
    for task in tasks:
        if Execution.objects.filter(pk=execution.pk, status=Status.CANCELLED).exists():
            execution.tasks.filter(status=Status.PENDING).update(status=Status.CANCELLED)
            return _finish(execution, error="", say=say, cancelled=True)
        _run_task(task, policy, source, destination)
        say(f"{task.status}: {task.source} -> {task.destination} {task.error}".rstrip())
    return _finish(execution, error="", say=say)


def execution_cancel(*, execution: Execution) -> bool:
    """Stop an execution: a pending one never runs, a running one stops before its next task.

    The task being copied is finished first.  False when the execution had ended already.
    """
    return bool(
        Execution.objects.filter(
            pk=execution.pk, status__in=[Status.PENDING, Status.RUNNING]
        ).update(status=Status.CANCELLED)
    )


def _plan(execution: Execution, policy: ReplicationPolicy, source: Source) -> list[Task]:
    tasks = []
    for repository in _retrying("catalog", source.repositories):
        if not _matches(policy.repository_filter, repository):
            continue
        target = destination_name(policy, repository)
        tags: list[str] = _retrying(f"tags of {repository}", partial(source.tags, repository))
        for tag in tags:
            if _matches(policy.tag_filter, tag):
                tasks.append(
                    Task(
                        execution=execution,
                        source=f"{repository}:{tag}",
                        destination=f"{target}:{tag}",
                    )
                )
    Task.objects.bulk_create(tasks)
    Execution.objects.filter(pk=execution.pk).update(total=len(tasks))
    return list(execution.tasks.order_by("pk"))


def _run_task(
    task: Task, policy: ReplicationPolicy, source: Source, destination: Destination
) -> None:
    task.status, task.started_at = Status.RUNNING, timezone.now()
    task.save(update_fields=["status", "started_at"])
    repository, tag = task.source.rsplit(":", 1)
    target = task.destination.rsplit(":", 1)[0]
    copier = _Copier(source, destination, repository, target)
    try:
        body, media_type = _retrying(task.source, lambda: source.manifest(repository, tag))
        task.digest = parse_manifest(body, media_type).digest
        existing = (
            None
            if policy.override
            else _retrying(task.destination, lambda: destination.tag_digest(target, tag))
        )
        if existing is not None and existing != task.digest:
            task.status = Status.SKIPPED
            task.error = f"the destination has {existing} under this tag and override is off"
        else:
            copier.manifest(tag, body, media_type)
            task.status = Status.SUCCEEDED
    except (ReplicationError, RegistryError) as error:
        task.status, task.error = Status.FAILED, str(error) or type(error).__name__
    except Exception as error:  # a bug or a storage failure: recorded, the others go on
        logger.exception("replication task %s failed", task.pk)
        task.status, task.error = Status.FAILED, f"{type(error).__name__}: {error}"
    task.bytes = copier.bytes
    task.finished_at = timezone.now()
    task.save(update_fields=["status", "error", "digest", "bytes", "finished_at"])


class _Copier:
    """Copies one manifest tree from ``repository`` to ``target``."""

    def __init__(
        self, source: Source, destination: Destination, repository: str, target: str
    ) -> None:
        self.source, self.destination = source, destination
        self.repository, self.target = repository, target
        self.bytes = 0
        self.deadline = time.monotonic() + TASK_TIMEOUT
        self.done: set[str] = set()  # manifest digests copied (referrers can form chains)

    def _check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ReplicationError(f"the task timed out after {TASK_TIMEOUT:g} s")

    def manifest(self, reference: str, body: bytes, media_type: str) -> None:
        """Copy a manifest: an index's children first, then blobs, the manifest, its referrers."""
        self._check_time()
        parsed = parse_manifest(body, media_type)
        self.done.add(parsed.digest)
        if parsed.media_type in INDEX_TYPES:
            for child in parsed.manifests:
                child_body, child_type = _retrying(
                    child.digest, partial(self.source.manifest, self.repository, child.digest)
                )
                self.manifest(child.digest, child_body, child_type)
        for blob in parsed.blobs:
            self.blob(blob.digest)
        _retrying(
            f"manifest {reference}",
            lambda: self.destination.put_manifest(self.target, reference, body, media_type),
        )
        # Signatures, SBOMs and other referrers travel with their subject, after it.
        found: list[str] = _retrying(
            f"referrers of {parsed.digest}",
            partial(self.source.referrers, self.repository, parsed.digest),
        )
        for digest in found:
            if digest not in self.done:
                referrer_body, referrer_type = _retrying(
                    digest, partial(self.source.manifest, self.repository, digest)
                )
                self.manifest(digest, referrer_body, referrer_type)

    def blob(self, digest: str) -> None:
        self._check_time()
        if _retrying(digest, lambda: self.destination.has_blob(self.target, digest)):
            return
        if _retrying(digest, lambda: self.destination.mount(self.target, digest)):
            return
        _retrying(f"blob {digest}", lambda: self._copy_blob(digest))

    def _copy_blob(self, digest: str) -> None:
        counted = 0

        def counting(chunks: Iterator[bytes]) -> Iterator[bytes]:
            nonlocal counted
            for chunk in chunks:
                counted += len(chunk)
                yield chunk

        with self.source.blob(self.repository, digest) as (chunks, size):
            self.destination.put_blob(self.target, digest, counting(chunks), size)
        self.bytes += counted


def _finish(
    execution: Execution, *, error: str, say: Progress, cancelled: bool = False
) -> Execution:
    tasks = execution.tasks.all()
    execution.succeeded = tasks.filter(status=Status.SUCCEEDED).count()
    execution.failed = tasks.filter(status=Status.FAILED).count()
    execution.skipped = tasks.filter(status=Status.SKIPPED).count()
    execution.total = tasks.count()
    execution.bytes = sum(tasks.values_list("bytes", flat=True))
    execution.error = error
    if cancelled:
        execution.status = Status.CANCELLED
    else:
        execution.status = Status.FAILED if error or execution.failed else Status.SUCCEEDED
    execution.finished_at = timezone.now()
    execution.save()
    say(
        f"execution {execution.pk} {execution.status}: {execution.succeeded} succeeded, "
        f"{execution.failed} failed, {execution.skipped} skipped, {execution.bytes} bytes"
        + (f"; {error}" if error else "")
    )
    return execution
