"""Replication between live registries: two harborpy servers and Debian's docker-registry.

The policy rows go into the test database; ``harborpy replicate`` then runs against the
``registry`` server's database and storage, as an administrator would run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from harborpy.celery import app
from replication import services
from replication.client import AuthError, TransientError
from replication.models import Direction, Execution, RegistryEndpoint, ReplicationPolicy
from replication.services import (
    endpoint_test,
    execution_cancel,
    execution_create,
    execution_run,
    execution_start,
    executions_fail_stalled,
)
from tests.distribution.helpers import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    MiB,
    Pushed,
    digest_of,
    encode,
    make_config,
    make_image_manifest,
    push_accepted,
    push_artifact,
    push_blob,
    push_image,
    push_image_blobs,
    push_index,
)
from tests.fixtures import authed
from tests.fixtures.jobs import job_worker
from tests.fixtures.relay import relay_to
from tests.fixtures.server import ADMIN, ADMIN_PASSWORD, LiveServer, free_port

ACCEPT = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def policy_for(
    url: str,
    direction: str,
    repository_filter: str,
    *,
    namespace: str = "",
    credentials: tuple[str, str] | None = ADMIN,
    override: bool = True,
) -> ReplicationPolicy:
    username, password = credentials or ("", "")
    endpoint = RegistryEndpoint.objects.create(
        name=unique("endpoint"), url=url, username=username, password=password
    )
    return ReplicationPolicy.objects.create(
        name=unique("policy"),
        endpoint=endpoint,
        direction=direction,
        repository_filter=repository_filter,
        destination_namespace=namespace,
        override=override,
    )


def replicate(server: LiveServer, policy: ReplicationPolicy) -> tuple[Execution, str]:
    """``harborpy replicate`` against the server's data; the execution and the command's output."""
    result = subprocess.run(
        [sys.executable, "-m", "harborpy.cli", "replicate", policy.name],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    execution = Execution.objects.filter(policy=policy).latest("pk")
    expected = 0 if execution.status == "succeeded" else 1
    assert result.returncode == expected, result.stderr
    return execution, result.stderr


def manifest_digest(url: str, name: str, reference: str, auth=ADMIN) -> str | None:
    response = authed.get(f"{url}/v2/{name}/manifests/{reference}", headers=ACCEPT, auth=auth)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    assert digest_of(response.content) == response.headers["Docker-Content-Digest"]
    return digest_of(response.content)


def blob_bytes(url: str, name: str, digest: str, auth=ADMIN) -> bytes:
    response = authed.get(f"{url}/v2/{name}/blobs/{digest}", auth=auth)
    assert response.status_code == 200, response.text
    assert digest_of(response.content) == digest
    return response.content


def test_push_single_and_multiarch(registry: LiveServer, client_registry: LiveServer) -> None:
    name = unique("library/push")
    image = push_image(registry, name, "v1")
    index, children = push_index(registry, name, "multi")
    policy = policy_for(client_registry.url, Direction.PUSH, name, namespace="test")

    execution, output = replicate(registry, policy)

    assert execution.status == "succeeded", output
    # v1, multi, and the two children push_index tags (arm64-child, amd64-child)
    assert (execution.total, execution.succeeded, execution.failed) == (4, 4, 0)
    assert execution.bytes > 0
    target = "test/" + name.split("/", 1)[1]
    assert manifest_digest(client_registry.url, target, "v1") == image.digest
    assert manifest_digest(client_registry.url, target, "multi") == index.digest
    for child in children:
        assert manifest_digest(client_registry.url, target, child.digest) == child.digest
        for blob in child.blobs:
            blob_bytes(client_registry.url, target, blob)
    for blob in image.blobs:
        blob_bytes(client_registry.url, target, blob)
    tasks = {t.source.rsplit(":", 1)[1]: t for t in execution.tasks.all()}
    assert tasks["multi"].digest == index.digest and tasks["multi"].status == "succeeded"

    # Again: nothing new to send, the blobs are skipped.
    again, output = replicate(registry, policy)
    assert again.status == "succeeded", output
    assert again.bytes == 0


def test_pull_from_second_server(registry: LiveServer, client_registry: LiveServer) -> None:
    name = unique("test/pull")
    image = push_image(client_registry, name, "v1")
    index, children = push_index(client_registry, name, "multi")
    policy = policy_for(client_registry.url, Direction.PULL, name, namespace="library")

    execution, output = replicate(registry, policy)

    assert execution.status == "succeeded", output
    assert (execution.total, execution.succeeded) == (4, 4)
    local = "library/" + name.split("/", 1)[1]
    assert manifest_digest(registry.url, local, "v1") == image.digest
    assert manifest_digest(registry.url, local, "multi") == index.digest
    for blob in image.blobs + children[0].blobs:
        blob_bytes(registry.url, local, blob)
    # Written through the distribution services: the audit log has the pushes.
    from audit.models import AuditEntry

    assert AuditEntry.objects.filter(action="push", resource=f"{local}:v1").exists()


def test_to_and_from_reference_registry(registry: LiveServer, reference_registry: str) -> None:
    ref_url = f"http://{reference_registry}"
    name = unique("library/ref")
    image = push_image(registry, name, "v1")
    index, _ = push_index(registry, name, "multi")
    # Several MiB in one layer: streamed chunk by chunk both ways.
    config, layers = push_image_blobs(registry, name, layer_sizes=(3 * MiB + 17,))
    big = push_accepted(
        registry, name, "big", encode(make_image_manifest(config, layers)), OCI_MANIFEST
    )
    out = policy_for(ref_url, Direction.PUSH, name, credentials=None)

    execution, output = replicate(registry, out)
    assert execution.status == "succeeded", output
    assert manifest_digest(ref_url, name, "v1", auth=None) == image.digest
    assert manifest_digest(ref_url, name, "multi", auth=None) == index.digest

    back = policy_for(ref_url, Direction.PULL, name, namespace="lib", credentials=None)
    execution, output = replicate(registry, back)
    assert execution.status == "succeeded", output
    local = "lib/" + name.split("/", 1)[1]
    assert manifest_digest(registry.url, local, "v1") == image.digest
    assert manifest_digest(registry.url, local, "multi") == index.digest
    for blob in image.blobs:
        blob_bytes(registry.url, local, blob)
    assert manifest_digest(registry.url, local, "big") == big.digest
    assert blob_bytes(registry.url, local, digest_of(layers[0])) == layers[0]


def test_override_off_keeps_a_differing_tag(
    registry: LiveServer, client_registry: LiveServer
) -> None:
    name = unique("library/keep")
    target = "test/" + name.split("/", 1)[1]
    push_image(registry, name, "v1")
    same = push_image(registry, name, "v2")
    theirs = push_image(client_registry, target, "v1")
    push_image(client_registry, target, "v2")  # another image under v2 as well
    policy = policy_for(client_registry.url, Direction.PUSH, name, namespace="test", override=False)

    execution, output = replicate(registry, policy)

    assert execution.status == "succeeded", output
    assert (execution.total, execution.skipped) == (2, 2)
    assert manifest_digest(client_registry.url, target, "v1") == theirs.digest
    assert manifest_digest(client_registry.url, target, "v2") != same.digest
    task = execution.tasks.get(source=f"{name}:v1")
    assert task.status == "skipped" and "override is off" in task.error


def test_failed_task_is_recorded(registry: LiveServer, client_registry: LiveServer) -> None:
    name = unique("library/fail")
    push_image(registry, name, "v1")
    policy = policy_for(client_registry.url, Direction.PUSH, name, namespace="nosuchproject")

    execution, _ = replicate(registry, policy)

    assert execution.status == "failed"
    assert (execution.total, execution.failed) == (1, 1)
    task = execution.tasks.get()
    assert task.status == "failed"
    assert (
        "nosuchproject" in task.error
        or "NAME_UNKNOWN" in task.error
        or "denied" in task.error.lower()
    ), task.error
    assert task.finished_at is not None


def test_unreachable_endpoint_fails_the_execution(registry: LiveServer) -> None:
    policy = policy_for(f"http://127.0.0.1:{free_port()}", Direction.PULL, "**")

    execution, _ = replicate(registry, policy)

    assert execution.status == "failed"
    assert "listing the source failed" in execution.error
    assert "127.0.0.1" in execution.error
    assert execution.finished_at is not None


def test_endpoint_test(client_registry: LiveServer) -> None:
    good = RegistryEndpoint(
        name="good", url=client_registry.url, username="admin", password=ADMIN_PASSWORD
    )
    endpoint_test(endpoint=good)

    wrong = RegistryEndpoint(name="bad", url=client_registry.url, username="admin", password="nope")
    with pytest.raises(AuthError, match="refused the credentials"):
        endpoint_test(endpoint=wrong)

    gone = RegistryEndpoint(name="gone", url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match=r"127\.0\.0\.1"):
        endpoint_test(endpoint=gone)


FOREIGN_LAYERS = {
    DOCKER_MANIFEST: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    OCI_MANIFEST: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}


def push_with_foreign_layer(registry: LiveServer, name: str, tag: str, media_type: str) -> str:
    """An image with a layer of its own and a foreign one (``urls``, never pushed)."""
    config, layers = push_image_blobs(registry, name, layer_sizes=(500,))
    document = make_image_manifest(config, layers, media_type=media_type)
    document["layers"].insert(
        0,
        {
            "mediaType": FOREIGN_LAYERS[media_type],
            "digest": digest_of(os.urandom(16)),
            "size": 123456,
            "urls": ["https://mcr.example.com/windows/base-layer"],
        },
    )
    return push_accepted(registry, name, tag, encode(document), media_type).digest


def test_foreign_layers_are_not_copied(registry: LiveServer, client_registry: LiveServer) -> None:
    name = unique("library/foreign")
    pushed = {
        tag: push_with_foreign_layer(registry, name, tag, media_type)
        for tag, media_type in (("docker", DOCKER_MANIFEST), ("oci", OCI_MANIFEST))
    }
    out = policy_for(client_registry.url, Direction.PUSH, name, namespace="test")

    execution, output = replicate(registry, out)

    assert execution.status == "succeeded", (output, list(execution.tasks.values("error")))
    remote = "test/" + name.split("/", 1)[1]
    for tag, digest in pushed.items():
        assert manifest_digest(client_registry.url, remote, tag) == digest

    back = policy_for(client_registry.url, Direction.PULL, remote, namespace="lib")
    execution, output = replicate(registry, back)
    assert execution.status == "succeeded", (output, list(execution.tasks.values("error")))
    local = "lib/" + name.split("/", 1)[1]
    for tag, digest in pushed.items():
        assert manifest_digest(registry.url, local, tag) == digest


def test_shared_blobs_are_mounted_not_sent_again(
    registry: LiveServer, client_registry: LiveServer
) -> None:
    base = unique("library/mnt")
    config = make_config()
    layers = [os.urandom(2000), os.urandom(3000)]
    body = encode(make_image_manifest(config, layers))
    for name in (f"{base}/a", f"{base}/b"):
        for blob in [config, *layers]:
            push_blob(registry, name, blob)
        push_accepted(registry, name, "v1", body, OCI_MANIFEST)
    policy = policy_for(client_registry.url, Direction.PUSH, f"{base}/*", namespace="test")

    execution, output = replicate(registry, policy)

    assert execution.status == "succeeded", output
    first, second = execution.tasks.order_by("pk")
    assert first.bytes == len(config) + 5000
    assert second.bytes == 0  # mounted from the first repository on the destination
    target = "test/" + base.split("/", 1)[1] + "/b"
    for blob in [config, *layers]:
        assert blob_bytes(client_registry.url, target, digest_of(blob)) == blob


@pytest.fixture
def replication_worker(registry: LiveServer, settings) -> Iterator[Any]:
    """A Celery worker on Redis in this process, on the server's database and store."""
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    with job_worker() as worker:
        yield worker


def test_an_execution_started_runs_on_the_worker(
    registry: LiveServer, client_registry: LiveServer, replication_worker
) -> None:
    assert app.conf.broker_url.startswith("redis://")
    name = unique("library/celery")
    image = push_image(registry, name, "v1")
    policy = policy_for(client_registry.url, Direction.PUSH, name, namespace="test")

    execution = execution_start(policy=policy)

    deadline = time.monotonic() + 60
    while Execution.objects.get(pk=execution.pk).status in ("pending", "running"):
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.1)
    execution.refresh_from_db()
    assert execution.status == "succeeded", list(execution.tasks.values("error"))
    assert execution.started_at and execution.finished_at
    target = "test/" + name.split("/", 1)[1]
    assert manifest_digest(client_registry.url, target, "v1") == image.digest


def test_a_disabled_policy_does_not_run(registry: LiveServer) -> None:
    policy = policy_for(registry.url, Direction.PUSH, "**")
    ReplicationPolicy.objects.filter(pk=policy.pk).update(enabled=False)
    result = subprocess.run(
        [sys.executable, "-m", "harborpy.cli", "replicate", policy.name],
        env=registry.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "is disabled" in result.stderr
    assert not Execution.objects.filter(policy=policy).exists()


def push_signature(registry: LiveServer, name: str, subject: Pushed) -> str:
    """An untagged referrer of ``subject`` (pushed by digest); its digest."""
    signature = "application/vnd.example.signature"
    return push_artifact(registry, name, None, artifact_type=signature, subject=subject).digest


def referrer_digests(url: str, name: str, digest: str) -> list[str]:
    response = authed.get(f"{url}/v2/{name}/referrers/{digest}")
    assert response.status_code == 200, response.text
    return [m["digest"] for m in response.json()["manifests"]]


def test_referrers_travel_with_their_subject(
    registry: LiveServer, client_registry: LiveServer
) -> None:
    name = unique("library/signed")
    image = push_image(registry, name, "v1")
    signature = push_signature(registry, name, image)
    out = policy_for(client_registry.url, Direction.PUSH, name, namespace="test")

    execution, output = replicate(registry, out)

    assert execution.status == "succeeded", output
    assert execution.total == 1  # the signature is untagged: it goes with v1's task
    remote = "test/" + name.split("/", 1)[1]
    assert referrer_digests(client_registry.url, remote, image.digest) == [signature]
    assert manifest_digest(client_registry.url, remote, signature) == signature

    back = policy_for(client_registry.url, Direction.PULL, remote, namespace="lib")
    execution, output = replicate(registry, back)
    assert execution.status == "succeeded", output
    local = "lib/" + name.split("/", 1)[1]
    assert referrer_digests(registry.url, local, image.digest) == [signature]


def test_cancel_stops_before_the_next_task(
    registry: LiveServer, client_registry: LiveServer, settings
) -> None:
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()  # run here, on its data
    name = unique("library/cancel")
    for tag in ("a", "b", "c"):
        push_image(registry, name, tag)
    policy = policy_for(client_registry.url, Direction.PUSH, name, namespace="test")

    pending = execution_create(policy=policy)
    assert execution_cancel(execution=pending)
    assert execution_run(execution_id=pending.pk).status == "cancelled"
    assert not pending.tasks.exists()  # never started

    running = execution_create(policy=policy)

    def cancel_after_the_first(line: str) -> None:
        if line.startswith("succeeded:"):
            execution_cancel(execution=running)

    done = execution_run(execution_id=running.pk, progress=cancel_after_the_first)

    assert done.status == "cancelled"
    statuses = list(done.tasks.order_by("pk").values_list("status", flat=True))
    assert statuses == ["succeeded", "cancelled", "cancelled"]
    assert done.finished_at is not None
    assert not execution_cancel(execution=done)  # ended already


def test_a_cancel_during_the_last_task_ends_cancelled(
    registry: LiveServer, client_registry: LiveServer, settings
) -> None:
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    name = unique("library/cancel1")
    push_image(registry, name, "only")
    policy = policy_for(client_registry.url, Direction.PUSH, name, namespace="test")
    execution = execution_create(policy=policy)

    def cancel_during_the_task(line: str) -> None:  # the task is done, the run is not
        if line.startswith("succeeded:"):
            assert execution_cancel(execution=execution)

    done = execution_run(execution_id=execution.pk, progress=cancel_during_the_task)

    done.refresh_from_db()
    assert done.status == "cancelled"  # accepted, so kept: not overwritten as succeeded
    assert done.finished_at is not None
    assert (done.total, done.succeeded) == (1, 1)
    assert list(done.tasks.values_list("status", flat=True)) == ["succeeded"]
    assert not execution_cancel(execution=done)


def test_a_slow_task_leaves_the_stall_mark_alone(
    registry: LiveServer, client_registry: LiveServer, settings
) -> None:
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    name = unique("library/slowtask")
    push_image(registry, name, "v1")
    target = "test/" + name.split("/", 1)[1]
    marked: list[Execution] = []

    def stall_while_the_manifest_goes(first_line: bytes) -> None:
        if first_line.startswith(f"PUT /v2/{target}/manifests/v1 ".encode()) and not marked:
            try:  # from the relay's thread: the worker waits on this very request
                marked.extend(executions_fail_stalled(now=timezone.now() + timedelta(hours=1)))
            finally:
                connection.close()

    address = urlsplit(client_registry.url)
    with relay_to(
        address.hostname or "", address.port or 80, [], stall_while_the_manifest_goes
    ) as relay:
        policy = policy_for(relay.url, Direction.PUSH, name, namespace="test")
        done = execution_run(execution_id=execution_create(policy=policy).pk)

    assert [e.pk for e in marked] == [done.pk]
    assert manifest_digest(client_registry.url, target, "v1")  # the slow worker got through
    done.refresh_from_db()
    assert done.status == "failed" and done.error.startswith("stalled")
    task = done.tasks.get()
    assert task.status == "failed" and task.error.startswith("stalled"), task.error
    assert (done.total, done.succeeded, done.failed) == (1, 0, 1)  # as the tasks say


def test_a_task_past_its_timeout_fails(
    registry: LiveServer, client_registry: LiveServer, settings, monkeypatch
) -> None:
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    monkeypatch.setattr(services.copier, "TASK_TIMEOUT", -1.0)
    name = unique("library/slow")
    push_image(registry, name, "v1")
    policy = policy_for(client_registry.url, Direction.PUSH, name, namespace="test")

    done = execution_run(execution_id=execution_create(policy=policy).pk)

    assert done.status == "failed"
    assert done.tasks.get().error == "the task timed out after -1 s"
