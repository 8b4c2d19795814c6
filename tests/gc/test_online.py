"""THE test of online collection: GC runs in a loop (grace 0) while clients push to a live server.

Pushes may fail while it runs with a grace window of 0 (a blob uploaded and
not yet referred to is fair game); clients then push the image again, as
real ones do.  What must never happen: an image the registry accepted that
cannot be pulled, or a blob row whose bytes are gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass

import pytest
from django.db import connection

from distribution.blobstore import blob_store
from distribution.gc import GCLocked, gc_run
from distribution.models import Blob, BlobState, GCRun, GCStatus
from tests.distribution.helpers import (
    OCI_MANIFEST,
    absolute,
    digest_of,
    encode,
    make_config,
    make_image_manifest,
    push_image,
    storage_root,
)
from tests.fixtures import authed
from tests.fixtures.server import LiveServer

THREADS = 4
IMAGES = 12


@dataclass
class Accepted:
    repository: str
    tag: str
    body: bytes
    blobs: list[str]


class Retry(Exception):
    """The collector took something this push needed: push the image again."""


def _ensure_blob(registry: LiveServer, repository: str, data: bytes, base_repository: str) -> None:
    """As docker does: HEAD, then mount from ``base_repository`` or upload."""
    url, digest = registry.url, digest_of(data)
    if authed.head(f"{url}/v2/{repository}/blobs/{digest}").status_code == 200:
        return
    response = authed.post(
        f"{url}/v2/{repository}/blobs/uploads/",
        params={"mount": digest, "from": base_repository},
    )
    if response.status_code == 201:
        return
    assert response.status_code == 202, response.text  # no mount: an upload session instead
    location = absolute(registry, response.headers["Location"])
    response = authed.put(location, params={"digest": digest}, data=data)
    if response.status_code == 503:  # the collector is deleting an old copy right now
        raise Retry
    assert response.status_code == 201, response.text


def _push(registry: LiveServer, repository: str, tag: str, base: bytes, base_repo: str) -> Accepted:
    config, layer, garbage = make_config(), os.urandom(2048), os.urandom(512)
    for data in (config, base, layer, garbage):  # the last one no manifest will ever use
        _ensure_blob(registry, repository, data, base_repo)
    body = encode(make_image_manifest(config, [base, layer]))
    response = authed.put(
        f"{registry.url}/v2/{repository}/manifests/{tag}",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    if response.status_code == 400 and response.json()["errors"][0]["code"] in (
        "MANIFEST_BLOB_UNKNOWN"
    ):
        raise Retry
    assert response.status_code == 201, response.text
    return Accepted(repository, tag, body, [digest_of(d) for d in (config, base, layer)])


def _pull_everything(registry: LiveServer, image: Accepted) -> None:
    url = f"{registry.url}/v2/{image.repository}"
    response = authed.get(f"{url}/manifests/{image.tag}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200, (image.repository, image.tag, response.text)
    assert response.content == image.body
    for digest in image.blobs:
        response = authed.get(f"{url}/blobs/{digest}")
        assert response.status_code == 200, (image.repository, digest, response.text)
        assert "sha256:" + hashlib.sha256(response.content).hexdigest() == digest


@pytest.mark.timeout(300)
def test_pushes_during_gc_lose_nothing(registry: LiveServer, settings) -> None:
    settings.HARBORPY_STORAGE = storage_root(registry).as_uri()
    base_repo = "test/gc-online-base"
    base = os.urandom(4096)
    seed = push_image(registry, base_repo, "seed")  # keeps nothing of ours: base comes next
    _ensure_blob(registry, base_repo, base, base_repo)
    config = make_config()
    _ensure_blob(registry, base_repo, config, base_repo)
    anchor = encode(make_image_manifest(config, [base]))
    assert (
        authed.put(
            f"{registry.url}/v2/{base_repo}/manifests/anchor",
            data=anchor,
            headers={"Content-Type": OCI_MANIFEST},
        ).status_code
        == 201
    )

    stop = threading.Event()
    runs: list[GCRun] = []
    collector_errors: list[BaseException] = []

    def collect() -> None:
        try:
            turn = 0
            while not stop.is_set():
                turn += 1
                # GCLocked: a push finishing a deletion holds the lock for a moment
                with contextlib.suppress(GCLocked):
                    runs.append(gc_run(grace=0, untagged=turn % 2 == 0))
                # Short, uneven pauses: runs start at every point of a push, yet with grace 0
                # a push must still find a moment to get its manifest in.
                time.sleep(random.uniform(0, 0.15))
        except BaseException as error:
            collector_errors.append(error)
        finally:
            connection.close()

    accepted: list[Accepted] = []
    retries: list[int] = []
    starved: list[str] = []
    push_errors: list[BaseException] = []

    def pusher(number: int) -> None:
        try:
            repository = f"test/gc-online-{number}"
            for index in range(IMAGES):
                for _attempt in range(50):
                    try:
                        image = _push(registry, repository, f"v{index}", base, base_repo)
                    except Retry:
                        retries.append(1)
                        continue
                    accepted.append(image)
                    break
                else:  # grace 0 lets a busy collector starve a push (never lose it)
                    starved.append(f"{repository}:v{index}")
        except BaseException as error:
            push_errors.append(error)

    collector = threading.Thread(target=collect)
    pushers = [threading.Thread(target=pusher, args=(n,)) for n in range(THREADS)]
    collector.start()
    for thread in pushers:
        thread.start()
    for thread in pushers:
        thread.join(240)
    stop.set()
    collector.join(60)

    assert push_errors == [] and collector_errors == []
    # Liveness is not promised at grace 0 (SQLite, one writer at a time, starves some
    # pushes); most must get through all the same, and every one accepted must be whole.
    assert len(accepted) >= THREADS * IMAGES // 2, starved
    assert len(runs) >= 3, "the collector ran while the pushes went on"
    assert all(run.status == GCStatus.SUCCEEDED for run in runs), [r.log for r in runs]
    assert sum(run.blobs_deleted for run in runs) > 0, "it collected the pushes' garbage"

    final = gc_run(grace=0)  # and once more after the last push
    assert final.status == GCStatus.SUCCEEDED, final.log
    for image in accepted:
        _pull_everything(registry, image)
    _pull_everything(
        registry, Accepted(base_repo, "anchor", anchor, [digest_of(config), digest_of(base)])
    )
    assert seed.digest  # its tag kept it too
    store = blob_store()
    for digest, state in Blob.objects.values_list("digest", "state"):
        assert state == BlobState.ACTIVE, digest
        assert store.blob_size(digest) is not None, f"{digest} has a row but no bytes"
    print(f"{len(runs)} collections, {len(retries)} retries, {len(starved)} pushes gave up")
