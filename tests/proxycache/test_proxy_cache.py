"""Proxy-cache projects against live upstreams: a second harborpy (token auth), and Debian's
docker-registry where the upstream has to go down.

The server under test runs with a two-second manifest TTL so that re-checks can be seen.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
import requests

from distribution.models import Blob, Manifest, Tag, Upload
from projects.models import Project
from proxycache.models import AbsentBlob
from replication.models import RegistryEndpoint
from tests.distribution.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    MiB,
    digest_of,
    encode,
    make_config,
    make_image_manifest,
    push_accepted,
    push_artifact,
    push_image,
    push_image_blobs,
    push_index,
)
from tests.fixtures import authed
from tests.fixtures.clients import go_registry
from tests.fixtures.server import ADMIN, LiveServer, harborpy_command, start_server

ACCEPT = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
TTL = 2


@pytest.fixture(scope="module")
def proxy_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    with django_db_blocker.unblock():
        server = start_server(
            tmp_path_factory.mktemp("proxy"), env={"HARBORPY_PROXY_MANIFEST_TTL": str(TTL)}
        )
    yield server
    server.stop()


@pytest.fixture
def proxy(proxy_server: LiveServer, suite_projects) -> LiveServer:
    return proxy_server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def proxy_project(
    server: LiveServer, upstream_url: str, *, public: bool = False, credentials=ADMIN
) -> tuple[str, RegistryEndpoint]:
    """A proxy-cache project of ``upstream_url``, created through the REST API."""
    username, password = credentials or ("", "")
    endpoint = RegistryEndpoint.objects.create(
        name=unique("upstream"), url=upstream_url, username=username, password=password
    )
    name = unique("cache")
    response = authed.post(
        f"{server.url}/api/v2.0/projects",
        json={"project_name": name, "registry_id": endpoint.pk, "public": public},
    )
    assert response.status_code == 201, response.text
    return name, endpoint


def get_manifest(server: LiveServer, name: str, reference: str, auth=ADMIN) -> requests.Response:
    return authed.get(f"{server.url}/v2/{name}/manifests/{reference}", headers=ACCEPT, auth=auth)


def get_blob(server: LiveServer, name: str, digest: str, auth=ADMIN) -> bytes:
    """A blob through the cache, once its fill (stored after the client has it) is done."""
    response = authed.get(f"{server.url}/v2/{name}/blobs/{digest}", auth=auth)
    assert response.status_code == 200, response.text
    assert digest_of(response.content) == digest
    wait_for(lambda: cached(name, digest))
    return response.content


def cached(name: str, digest: str) -> bool:
    """Whether ``digest`` is stored in ``name`` and attached to the manifests that wait for it."""
    return (
        Blob.objects.filter(digest=digest, links__repository__name=name).exists()
        and not AbsentBlob.objects.filter(digest=digest, manifest__repository__name=name).exists()
    )


@dataclass
class Seeded:
    digest: str
    blobs: list[str]


def seed(url: str, name: str, tag: str) -> Seeded:
    """Push a fresh image to a plain registry (POST, then PUT with the bytes)."""
    config = make_config()
    layers = [os.urandom(2000), os.urandom(300 * 1024)]
    for blob in [config, *layers]:
        start = requests.post(f"{url}/v2/{name}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = urljoin(url + "/", start.headers["Location"])
        done = requests.put(location, params={"digest": digest_of(blob)}, data=blob)
        assert done.status_code == 201, done.text
    body = encode(make_image_manifest(config, layers))
    put = requests.put(
        f"{url}/v2/{name}/manifests/{tag}", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201, put.text
    return Seeded(digest_of(body), [digest_of(b) for b in [config, *layers]])


@contextlib.contextmanager
def stoppable_upstream() -> Iterator[tuple[str, subprocess.Popen]]:
    """A docker-registry the test can take down: (its URL, its process)."""
    with go_registry() as (host, process):
        yield f"http://{host}", process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=20)


def uploads_in(project: str) -> bool:
    """Whether upload sessions of ``project`` exist (another test's fill may be finishing)."""
    return Upload.objects.filter(repository_name__startswith=f"{project}/").exists()


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_pull_through_caches_an_image_and_serves_it_afterwards(proxy: LiveServer) -> None:
    with stoppable_upstream() as (url, process):
        _pull_through_then_upstream_down(proxy, url, process)


def _pull_through_then_upstream_down(proxy: LiveServer, url: str, process) -> None:
    upstream_name = unique("test/app")
    image = seed(url, upstream_name, "v1")
    project, _ = proxy_project(proxy, url, credentials=None)
    name = f"{project}/{upstream_name}"

    response = get_manifest(proxy, name, "v1")
    assert response.status_code == 200, response.text
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert digest_of(response.content) == image.digest
    manifest = Manifest.objects.get(repository__name=name, digest=image.digest)
    assert Tag.objects.filter(repository__name=name, name="v1", manifest=manifest).exists()
    # Stored before its blobs: they wait, and nothing refers to them yet.
    assert set(
        AbsentBlob.objects.filter(manifest=manifest).values_list("digest", flat=True)
    ) == set(image.blobs)

    for digest in image.blobs:
        get_blob(proxy, name, digest)
    wait_for(lambda: not AbsentBlob.objects.filter(manifest=manifest).exists())
    assert set(manifest.blobs.values_list("digest", flat=True)) == set(image.blobs)

    # Served from the cache now, even with the upstream gone.
    stop(process)
    assert get_manifest(proxy, name, image.digest).headers["Docker-Content-Digest"] == image.digest
    time.sleep(TTL + 0.5)  # the tag is due for a re-check, which fails: the cache answers
    response = get_manifest(proxy, name, "v1")
    assert response.status_code == 200, response.text
    assert response.headers["Docker-Content-Digest"] == image.digest
    for digest in image.blobs:
        get_blob(proxy, name, digest)
    # What was never cached cannot be served: 503 with Retry-After, not a hang.
    missing = get_manifest(proxy, name, "v2")
    assert missing.status_code == 503, missing.text
    assert missing.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "Retry-After" in missing.headers
    gone = authed.get(f"{proxy.url}/v2/{name}/blobs/sha256:{'0' * 64}")
    assert gone.status_code == 503, gone.text


def test_a_tag_is_rechecked_after_the_ttl(proxy: LiveServer, client_registry: LiveServer) -> None:
    upstream_name = unique("test/moving")
    first = push_image(client_registry, upstream_name, "latest")
    second = push_image(client_registry, upstream_name, "next")
    project, _ = proxy_project(proxy, client_registry.url)
    name = f"{project}/{upstream_name}"
    assert get_manifest(proxy, name, "latest").headers["Docker-Content-Digest"] == first.digest

    # The upstream's tag moves (one manifest PUT: well within the TTL) ...
    moved = authed.put(
        f"{client_registry.url}/v2/{upstream_name}/manifests/latest",
        data=second.body,
        headers={"Content-Type": second.media_type},
    )
    assert moved.status_code == 201, moved.text
    # ... and within the TTL the cached tag is served without asking the upstream.
    assert get_manifest(proxy, name, "latest").headers["Docker-Content-Digest"] == first.digest
    time.sleep(TTL + 0.5)
    assert get_manifest(proxy, name, "latest").headers["Docker-Content-Digest"] == second.digest
    assert Tag.objects.get(repository__name=name, name="latest").manifest.digest == second.digest

    # A tag the upstream deleted is gone here too (its content stays until GC).
    deleted = authed.delete(f"{client_registry.url}/v2/{upstream_name}/manifests/latest")
    assert deleted.status_code == 202, deleted.text
    time.sleep(TTL + 0.5)
    response = get_manifest(proxy, name, "latest")
    assert response.status_code == 404, response.text
    assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert get_manifest(proxy, name, "nothere").status_code == 404


def test_an_index_is_cached_at_once_and_each_child_when_asked_for(
    proxy: LiveServer, client_registry: LiveServer
) -> None:
    upstream_name = unique("test/multi")
    index, children = push_index(client_registry, upstream_name, "multi")
    project, _ = proxy_project(proxy, client_registry.url, public=True)
    name = f"{project}/{upstream_name}"

    response = get_manifest(proxy, name, "multi", auth=None)  # a public proxy: anonymous pulls
    assert response.status_code == 200, response.text
    assert response.headers["Docker-Content-Digest"] == index.digest
    stored = set(Manifest.objects.filter(repository__name=name).values_list("digest", flat=True))
    assert stored == {index.digest}  # the children wait until a client asks for one
    cached = Manifest.objects.get(repository__name=name, digest=index.digest)
    assert set(cached.absent_children.values_list("digest", flat=True)) == {
        c.digest for c in children
    }

    first, second = children
    answer = get_manifest(proxy, name, first.digest, auth=None)
    assert answer.status_code == 200, answer.text
    assert digest_of(answer.content) == first.digest
    # Attached to its index at once, which keeps it from garbage collection.
    assert list(cached.children.values_list("digest", flat=True)) == [first.digest]
    assert list(cached.absent_children.values_list("digest", flat=True)) == [second.digest]
    assert get_manifest(proxy, name, second.digest, auth=None).status_code == 200
    assert set(cached.children.values_list("digest", flat=True)) == {c.digest for c in children}
    assert not cached.absent_children.exists()

    # A child the upstream does not have (a broken index upstream) is a 404 of its own; the
    # index itself is served all the same.
    missing = get_manifest(proxy, name, f"sha256:{'1' * 64}", auth=None)
    assert missing.status_code == 404, missing.text
    assert get_manifest(proxy, name, index.digest, auth=None).status_code == 200


def test_a_client_that_cannot_take_an_index_gets_its_default_child_through_the_cache(
    proxy: LiveServer, client_registry: LiveServer
) -> None:
    """An old client (single-manifest Accept only) asks for a multi-arch tag: it gets the
    linux/amd64 manifest, fetched into the cache for it, as from any registry."""
    upstream_name = unique("test/oldclient")
    index, children = push_index(client_registry, upstream_name, "multi")
    amd64 = next(c for c in children if c.platform and c.platform["architecture"] == "amd64")
    project, _ = proxy_project(proxy, client_registry.url)
    name = f"{project}/{upstream_name}"
    old_client = {"Accept": OCI_MANIFEST}

    for _ in range(2):  # the second time from the cache, child and all
        response = authed.get(f"{proxy.url}/v2/{name}/manifests/multi", headers=old_client)
        assert response.status_code == 200, response.text
        assert response.headers["Docker-Content-Digest"] == amd64.digest
    cached = Manifest.objects.get(repository__name=name, digest=index.digest)
    assert list(cached.children.values_list("digest", flat=True)) == [amd64.digest]
    # A client that takes indexes still gets the index.
    assert get_manifest(proxy, name, "multi").headers["Docker-Content-Digest"] == index.digest


def test_referrers_come_through_the_cache(proxy: LiveServer, client_registry: LiveServer) -> None:
    upstream_name = unique("test/signed")
    image = push_image(client_registry, upstream_name, "v1")
    signature = push_artifact(
        client_registry,
        upstream_name,
        None,
        artifact_type="application/vnd.example.signature",
        subject=image,
    )
    project, _ = proxy_project(proxy, client_registry.url)
    name = f"{project}/{upstream_name}"

    listed = authed.get(f"{proxy.url}/v2/{name}/referrers/{image.digest}")
    assert listed.status_code == 200, listed.text
    assert [m["digest"] for m in listed.json()["manifests"]] == [signature.digest]
    cached = Manifest.objects.get(repository__name=name, digest=signature.digest)
    assert cached.subject_digest == image.digest
    answer = get_manifest(proxy, name, signature.digest)
    assert digest_of(answer.content) == signature.digest
    for digest in signature.blobs:  # its blobs come through the cache as any others
        get_blob(proxy, name, digest)
    bad = authed.get(f"{proxy.url}/v2/{name}/referrers/not-a-digest")
    assert bad.status_code == 400


def test_a_cache_never_hands_out_another_projects_blob(
    proxy: LiveServer, client_registry: LiveServer
) -> None:
    secret = push_image(proxy, "test/secret", "v1")  # stored here, in an ordinary project
    Project.objects.filter(name="test").update(public=False)
    upstream_name = unique("test/open")
    shared = push_image(client_registry, upstream_name, "v1")
    project, _ = proxy_project(proxy, client_registry.url, public=True)
    name = f"{project}/{upstream_name}"

    for digest in secret.blobs:  # the upstream has no such blob: nothing leaks
        for method in ("GET", "HEAD"):
            answer = authed.request(method, f"{proxy.url}/v2/{name}/blobs/{digest}", auth=None)
            assert answer.status_code == 404, (method, answer.text)
    assert not Blob.objects.filter(digest__in=secret.blobs, links__repository__name=name).exists()
    # The cache's own content comes through as usual.
    assert get_manifest(proxy, name, "v1", auth=None).status_code == 200
    for digest in shared.blobs:
        get_blob(proxy, name, digest, auth=None)


def test_pushes_to_a_proxy_cache_are_refused(
    proxy: LiveServer, client_registry: LiveServer
) -> None:
    project, _ = proxy_project(proxy, client_registry.url)
    name = f"{project}/app"
    data = b"not for a cache"
    upload = authed.post(
        f"{proxy.url}/v2/{name}/blobs/uploads/", params={"digest": digest_of(data)}, data=data
    )
    assert upload.status_code == 403, upload.text
    error = upload.json()["errors"][0]
    assert error["code"] == "DENIED" and "proxy cache" in error["message"]
    started = authed.post(f"{proxy.url}/v2/{name}/blobs/uploads/")
    assert started.status_code == 403
    body = encode(make_image_manifest(b"{}", []))
    put = authed.put(
        f"{proxy.url}/v2/{name}/manifests/v1",
        data=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 403, put.text
    assert not uploads_in(project)
    assert not Manifest.objects.filter(repository__project__name=project).exists()


def test_a_blob_is_streamed_while_stored_and_an_abandoned_read_stores_nothing(
    proxy: LiveServer, client_registry: LiveServer
) -> None:
    upstream_name = unique("test/big")
    config, layers = push_image_blobs(client_registry, upstream_name, layer_sizes=(4 * MiB + 3,))
    big = push_accepted(
        client_registry,
        upstream_name,
        "v1",
        encode(make_image_manifest(config, layers)),
        OCI_MANIFEST,
    )
    project, _ = proxy_project(proxy, client_registry.url)
    name = f"{project}/{upstream_name}"
    assert get_manifest(proxy, name, "v1").headers["Docker-Content-Digest"] == big.digest
    layer = digest_of(layers[0])

    # A client that reads 64 KiB and hangs up: nothing is kept, no upload is left over.
    with requests.get(f"{proxy.url}/v2/{name}/blobs/{layer}", auth=ADMIN, stream=True) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == len(layers[0])
        next(r.iter_content(64 * 1024))
    time.sleep(1.0)
    wait_for(lambda: not uploads_in(project))
    assert not Blob.objects.filter(digest=layer).exists()

    # Two clients at once: both get the whole blob, it is stored once and attached.
    results: list[bytes] = []

    def pull() -> None:
        results.append(authed.get(f"{proxy.url}/v2/{name}/blobs/{layer}").content)

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [digest_of(r) for r in results] == [layer, layer]
    wait_for(lambda: Blob.objects.filter(digest=layer).exists())
    manifest = Manifest.objects.get(repository__name=name, digest=big.digest)
    wait_for(lambda: manifest.blobs.filter(digest=layer).exists())
    wait_for(lambda: not uploads_in(project))
    # Now local: a range read works like any stored blob.
    part = authed.get(f"{proxy.url}/v2/{name}/blobs/{layer}", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == layers[0][:10]


def test_garbage_collection_keeps_what_the_cache_holds(proxy: LiveServer) -> None:
    with stoppable_upstream() as (url, process):
        upstream_name = unique("test/kept")
        image = seed(url, upstream_name, "v1")
        project, _ = proxy_project(proxy, url, credentials=None)
        name = f"{project}/{upstream_name}"
        get_manifest(proxy, name, "v1")
        get_blob(proxy, name, image.blobs[0])  # one blob cached, the others still upstream
        wait_for(lambda: Blob.objects.filter(digest=image.blobs[0]).exists())

        harborpy_command(proxy, "gc", "--grace", "0")

        stop(process)
        get_blob(proxy, name, image.blobs[0])
        assert get_manifest(proxy, name, image.digest).status_code == 200
        # The blobs never fetched are still expected: fetched once the upstream is back.
        assert AbsentBlob.objects.filter(digest=image.blobs[1]).exists()


def test_proxy_projects_through_the_api(proxy: LiveServer, client_registry: LiveServer) -> None:
    project, endpoint = proxy_project(proxy, client_registry.url)
    shown = authed.get(f"{proxy.url}/api/v2.0/projects/{project}").json()
    assert shown["registry_id"] == endpoint.pk
    unknown = authed.post(
        f"{proxy.url}/api/v2.0/projects", json={"project_name": "nope", "registry_id": 999999}
    )
    assert unknown.status_code == 400, unknown.text
    assert "registry endpoint 999999 does not exist" in unknown.text
    plain = authed.post(f"{proxy.url}/api/v2.0/projects", json={"project_name": unique("plain")})
    assert plain.status_code == 201

    # Anyone may create projects (the default), but only an administrator a proxy cache.
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("casey", password="casey-pw-1")
    body = {"project_name": unique("mine"), "registry_id": endpoint.pk}
    refused = authed.post(f"{proxy.url}/api/v2.0/projects", json=body, auth=("casey", "casey-pw-1"))
    assert refused.status_code == 403, refused.text
    assert not Project.objects.filter(name=body["project_name"]).exists()
    body.pop("registry_id")
    mine = authed.post(f"{proxy.url}/api/v2.0/projects", json=body, auth=("casey", "casey-pw-1"))
    assert mine.status_code == 201, mine.text

    # The endpoint a proxy cache pulls from cannot be deleted under it.
    refused = authed.delete(f"{proxy.url}/api/v2.0/registries/{endpoint.pk}")
    assert refused.status_code == 412, refused.text
    assert f"proxy-cache project(s) {project}" in refused.text
    assert RegistryEndpoint.objects.filter(pk=endpoint.pk).exists()
