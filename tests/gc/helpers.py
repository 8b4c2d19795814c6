"""Pushes through the services, ageing rows, and looking at what is left."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from distribution import services
from distribution.blobstore import blob_store
from distribution.gc import gc_lock
from distribution.models import Blob, Manifest
from tests.distribution.helpers import (
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    artifact_document,
    encode,
    make_config,
    make_image_manifest,
)

OLD = timedelta(hours=3)  # older than the grace window the tests use (one hour)
GRACE = 3600


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(repository: str, data: bytes) -> str:
    """Upload ``data`` as one monolithic upload; return its digest."""
    digest = digest_of(data)
    services.upload_monolithic(repository_name=repository, digest=digest, chunks=[data])
    return digest


@dataclass
class Image:
    digest: str
    blobs: list[str] = field(default_factory=list)
    body: bytes = b""
    media_type: str = OCI_MANIFEST


def put_manifest(repository: str, reference: str, document: dict[str, Any]) -> Image:
    body = encode(document)
    manifest = services.manifest_put(
        repository_name=repository,
        reference=reference,
        content_type=document["mediaType"],
        body=body,
    )
    return Image(manifest.digest, body=body, media_type=document["mediaType"])


def push_image(repository: str, reference: str) -> Image:
    """A fresh config and two layers, then the manifest under ``reference`` (tag or digest)."""
    config, layers = make_config(), [os.urandom(300), os.urandom(1200)]
    blobs = [push_blob(repository, data) for data in [config, *layers]]
    document = make_image_manifest(config, layers)
    if reference == "@":
        reference = digest_of(encode(document))
    image = put_manifest(repository, reference, document)
    image.blobs = blobs
    return image


def push_index(repository: str, reference: str, children: list[Image]) -> Image:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": c.media_type, "digest": c.digest, "size": len(c.body)} for c in children
        ],
    }
    if reference == "@":
        reference = digest_of(encode(document))
    return put_manifest(repository, reference, document)


def push_referrer(repository: str, subject: Image) -> Image:
    """An untagged OCI artifact (a signature, say) whose subject is ``subject``."""
    payload = os.urandom(100)
    blobs = [push_blob(repository, EMPTY_JSON), push_blob(repository, payload)]
    document = artifact_document("application/vnd.example.signature", payload, subject)
    image = put_manifest(repository, digest_of(encode(document)), document)
    image.blobs = blobs
    return image


def age_everything(by: timedelta = OLD) -> None:
    """Make every blob and manifest look as if it was last used ``by`` ago."""
    past = timezone.now() - by
    Blob.objects.update(touched_at=past)
    Manifest.objects.update(created_at=past)


def stored(digest: str) -> bool:
    return blob_store().blob_size(digest) is not None


def blob_bytes(digest: str) -> bytes:
    reader = blob_store().blob_open(digest)
    try:
        return b"".join(reader.chunks)
    finally:
        reader.close()


def intact(digest: str) -> bool:
    """The blob has its row (not being deleted) and its exact bytes in the store."""
    row = Blob.objects.filter(digest=digest).exclude(state="deleting").exists()
    return row and stored(digest) and digest_of(blob_bytes(digest)) == digest


def gone(digest: str) -> bool:
    return not Blob.objects.filter(digest=digest).exists() and not stored(digest)


@contextlib.contextmanager
def lock_held_elsewhere(hold_for: float = 60) -> Iterator[None]:
    """Another collector holds the GC lock (in a thread with its own connection) meanwhile."""
    held, release = threading.Event(), threading.Event()

    def other_collector() -> None:
        try:
            with gc_lock():
                held.set()
                release.wait(hold_for)
        finally:
            connection.close()

    thread = threading.Thread(target=other_collector)
    thread.start()
    try:
        assert held.wait(10), "the other collector did not get the lock"
        yield
    finally:
        release.set()
        thread.join(30)
