"""Responses that break off mid-way (through a loopback relay in front of a live server)
are transient: the step is tried again, a blob from a fresh GET into a fresh upload."""

from __future__ import annotations

from urllib.parse import urlsplit

from replication.models import Direction
from tests.distribution.helpers import (
    OCI_MANIFEST,
    MiB,
    digest_of,
    encode,
    make_image_manifest,
    push_accepted,
    push_image_blobs,
    upload_dirs,
)
from tests.fixtures.relay import Cut, relay_to
from tests.fixtures.server import LiveServer
from tests.replication.test_replication import (
    blob_bytes,
    manifest_digest,
    policy_for,
    replicate,
    unique,
)


def test_a_pull_survives_streams_broken_mid_way(
    registry: LiveServer, client_registry: LiveServer
) -> None:
    name = unique("test/broken")
    config, layers = push_image_blobs(client_registry, name, layer_sizes=(MiB + 5,))
    image = push_accepted(
        client_registry, name, "v1", encode(make_image_manifest(config, layers)), OCI_MANIFEST
    )
    layer = digest_of(layers[0])
    address = urlsplit(client_registry.url)
    cuts = [
        # The layer's body broken off twice (the third attempt of three gets through) ...
        Cut(marker=f"/blobs/{layer} ".encode(), after=64 * 1024, times=2),
        # ... and the manifest's, read whole (not streamed), once.
        Cut(marker=f"GET /v2/{name}/manifests/v1 ".encode(), after=10),
    ]
    with relay_to(address.hostname or "", address.port or 80, cuts) as relay:
        policy = policy_for(relay.url, Direction.PULL, name, namespace="library")
        before = upload_dirs(registry)

        execution, output = replicate(registry, policy)

    assert [cut.done for cut in cuts] == [2, 1]  # the relay did break them off
    assert execution.status == "succeeded", (output, list(execution.tasks.values("error")))
    local = "library/" + name.split("/", 1)[1]
    assert manifest_digest(registry.url, local, "v1") == image.digest
    assert blob_bytes(registry.url, local, layer) == layers[0]
    # Counted once, and nothing half-written left behind by the broken attempts.
    assert execution.tasks.get().bytes == len(config) + len(layers[0])
    assert upload_dirs(registry) <= before


def test_a_stream_broken_every_time_fails_after_three_attempts(
    registry: LiveServer, client_registry: LiveServer
) -> None:
    name = unique("test/broken")
    config, layers = push_image_blobs(client_registry, name, layer_sizes=(MiB,))
    push_accepted(
        client_registry, name, "v1", encode(make_image_manifest(config, layers)), OCI_MANIFEST
    )
    address = urlsplit(client_registry.url)
    cut = Cut(marker=f"/blobs/{digest_of(layers[0])} ".encode(), after=1000, times=99)
    with relay_to(address.hostname or "", address.port or 80, [cut]) as relay:
        policy = policy_for(relay.url, Direction.PULL, name, namespace="library")
        before = upload_dirs(registry)

        execution, _ = replicate(registry, policy)

    assert cut.done == 3
    assert execution.status == "failed"
    error = execution.tasks.get().error
    assert "broke off" in error and "gave up after 3 attempts" in error, error
    assert upload_dirs(registry) <= before
