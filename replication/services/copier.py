"""Copying one manifest tree, with retries on transient errors and the execution's heartbeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TypeVar

from django.db import transaction
from django.utils import timezone

from distribution.manifests import INDEX_TYPES, parse_manifest

from ..client import ReplicationError, TransientError
from ..models import Execution
from .sides import Destination, Source

logger = logging.getLogger(__name__)

RETRIES = 3  # attempts per step on transient errors
BACKOFF = 0.5  # seconds, doubled after each failed attempt
# A task that has not finished after this long fails before its next step (a manifest or
# blob); a blob being streamed is not cut off (each HTTP read has its own timeout).
TASK_TIMEOUT = 3600.0
# The running worker writes Execution.heartbeat_at at most this often while a blob streams.
HEARTBEAT_SECONDS = 15.0

T = TypeVar("T")


class Heartbeat:
    """Writes an execution's ``heartbeat_at``: when asked, or while copying, every so often.

    Checking the clock per chunk is cheap; the UPDATE happens at most every
    HEARTBEAT_SECONDS.  Inside a transaction it waits: nobody would see it before the commit.
    """

    def __init__(self, execution_id: int) -> None:
        self.execution_id = execution_id
        self.last = float("-inf")

    def beat(self, *, now: bool = False) -> None:
        moment = time.monotonic()
        if not now and moment - self.last < HEARTBEAT_SECONDS:
            return
        if transaction.get_connection().in_atomic_block:
            return
        self.last = moment
        Execution.objects.filter(pk=self.execution_id).update(heartbeat_at=timezone.now())


def retrying(what: str, call: Callable[[], T]) -> T:
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


class Copier:
    """Copies one manifest tree from ``repository`` to ``target``."""

    def __init__(
        self,
        source: Source,
        destination: Destination,
        repository: str,
        target: str,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.source, self.destination = source, destination
        self.heartbeat = heartbeat
        self.repository, self.target = repository, target
        self.bytes = 0
        self.deadline = time.monotonic() + TASK_TIMEOUT
        self.done: set[str] = set()  # manifest digests copied (referrers can form chains)

    def _check_time(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat()
        if time.monotonic() > self.deadline:
            raise ReplicationError(f"the task timed out after {TASK_TIMEOUT:g} s")

    def manifest(self, reference: str, body: bytes, media_type: str) -> None:
        """Copy a manifest: an index's children first, then blobs, the manifest, its referrers."""
        self._check_time()
        parsed = parse_manifest(body, media_type)
        self.done.add(parsed.digest)
        if parsed.media_type in INDEX_TYPES:
            for child in parsed.manifests:
                child_body, child_type = retrying(
                    child.digest, partial(self.source.manifest, self.repository, child.digest)
                )
                self.manifest(child.digest, child_body, child_type)
        for blob in parsed.blobs:
            # A foreign (non-distributable) layer, with ``urls``, lives where they point: the
            # source need not have it and a registry accepts the manifest without it (Harbor
            # skips them too).
            if not blob.urls:
                self.blob(blob.digest)
        retrying(
            f"manifest {reference}",
            lambda: self.destination.put_manifest(self.target, reference, body, media_type),
        )
        # Signatures, SBOMs and other referrers travel with their subject, after it.
        found: list[str] = retrying(
            f"referrers of {parsed.digest}",
            partial(self.source.referrers, self.repository, parsed.digest),
        )
        for digest in found:
            if digest not in self.done:
                referrer_body, referrer_type = retrying(
                    digest, partial(self.source.manifest, self.repository, digest)
                )
                self.manifest(digest, referrer_body, referrer_type)

    def blob(self, digest: str) -> None:
        self._check_time()
        if retrying(digest, lambda: self.destination.has_blob(self.target, digest)):
            return
        if retrying(digest, lambda: self.destination.mount(self.target, digest)):
            return
        retrying(f"blob {digest}", lambda: self._copy_blob(digest))

    def _copy_blob(self, digest: str) -> None:
        counted = 0

        def counting(chunks: Iterator[bytes]) -> Iterator[bytes]:
            nonlocal counted
            for chunk in chunks:
                counted += len(chunk)
                if self.heartbeat is not None:
                    self.heartbeat.beat()
                yield chunk

        with self.source.blob(self.repository, digest) as (chunks, size):
            self.destination.put_blob(self.target, digest, counting(chunks), size)
        self.bytes += counted
