"""The ways harborpy is deployed: the embedded quick start, S3 storage, several web nodes.

Each test starts its own ``harborpy serve`` processes and drives them with real
clients or raw HTTP, as an operator's setup would be driven.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import requests

from tests.distribution.helpers import ADMIN_BASIC
from tests.fixtures import authed
from tests.fixtures.clients import SampleImages, skopeo, skopeo_json
from tests.fixtures.s3 import s3_client
from tests.fixtures.server import LiveServer, start_server
from tests.fixtures.tools import require_tool

NO_TLS = "--tls-verify=false"


def push(sample: SampleImages, tag: str, ref: str, *extra: str) -> None:
    skopeo("copy", "--dest-tls-verify=false", *extra, sample.oci(tag), f"docker://{ref}")


def raw_manifest(ref: str) -> bytes:
    return skopeo("inspect", NO_TLS, "--raw", f"docker://{ref}").encode()


def stored_blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs").rglob("*") if p.is_file()}


# --- the embedded quick start ------------------------------------------------------------------


def test_embedded_server_keeps_everything_under_its_data_folder(
    tmp_path: Path, sample_images: SampleImages
) -> None:
    data = tmp_path / "var"
    server = start_server(data, embedded=True)
    try:
        push(sample_images, "single", f"{server.host}/library/app:1")
        push(sample_images, "multi", f"{server.host}/library/multi:1", "--all")
        assert (
            hashlib.sha256(raw_manifest(f"{server.host}/library/app:1")).hexdigest()
            == (sample_images.single.digest.split(":", 1)[1])
        )
    finally:
        server.stop()
    assert (data / "harborpy.sqlite3").is_file()
    expected = {d.split(":", 1)[1] for d in sample_images.single.blobs + sample_images.multi.blobs}
    assert expected <= stored_blob_files(data / "storage")

    # Everything survives a restart.
    server = start_server(data, embedded=True)
    try:
        tags = skopeo_json("list-tags", NO_TLS, f"docker://{server.host}/library/app")
        assert tags["Tags"] == ["1"]
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{server.host}/library/multi:1",
            f"dir:{tmp_path / 'pulled'}",
        )
        assert (tmp_path / "pulled" / "manifest.json").is_file()
    finally:
        server.stop()


# --- S3 storage ---------------------------------------------------------------------------------


@pytest.fixture
def s3_server(s3_bucket_url: str, suite_projects, tmp_path: Path):
    servers: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        server = start_server(
            tmp_path / f"node{len(servers)}", env={"HARBORPY_STORAGE": s3_bucket_url, **env}
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _bucket_keys(s3_bucket_url: str, s3_endpoint: str) -> set[str]:
    bucket = s3_bucket_url.split("/")[2]
    client = s3_client(s3_endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", ())}


def test_real_clients_push_and_pull_through_s3(
    s3_server, s3_bucket_url: str, s3_endpoint: str, sample_images: SampleImages, tmp_path: Path
) -> None:
    server = s3_server()
    push(sample_images, "multi", f"{server.host}/s3/multi:1", "--all")
    keys = _bucket_keys(s3_bucket_url, s3_endpoint)
    for digest in sample_images.multi.blobs:
        hex_ = digest.split(":", 1)[1]
        assert f"store/blobs/sha256/{hex_[:2]}/{hex_}" in keys
    assert not any("/uploads/" in key for key in keys), "upload parts left behind"
    skopeo(
        "copy",
        "--all",
        "--src-tls-verify=false",
        f"docker://{server.host}/s3/multi:1",
        f"oci:{tmp_path / 'pulled'}:multi",
    )
    index = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == sample_images.multi.digest


def test_blob_get_redirects_to_a_presigned_url(
    s3_server, sample_images: SampleImages, tmp_path: Path
) -> None:
    server = s3_server(HARBORPY_STORAGE_REDIRECT="true")
    push(sample_images, "single", f"{server.host}/s3/redirect:1")
    layer = sample_images.single.layers[0]
    url = f"{server.url}/v2/s3/redirect/blobs/{layer}"
    answer = authed.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 307
    assert answer.headers["Docker-Content-Digest"] == layer
    body = authed.get(answer.headers["Location"], timeout=10).content
    assert "sha256:" + hashlib.sha256(body).hexdigest() == layer
    # A ranged read is served by harborpy itself, not redirected.
    ranged = authed.get(url, headers={"Range": "bytes=0-9"}, allow_redirects=False, timeout=10)
    assert ranged.status_code == 206 and ranged.content == body[:10]
    # A real client follows the redirect and verifies every digest.
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{server.host}/s3/redirect:1",
        f"dir:{tmp_path / 'pulled'}",
    )
    assert (tmp_path / "pulled" / layer.split(":", 1)[1]).read_bytes() == body


# --- several web nodes on one database and one store ------------------------------------------


@pytest.fixture(params=["filesystem", "s3"])
def two_nodes(request, suite_projects, tmp_path: Path):
    if request.param == "s3":
        storage = request.getfixturevalue("s3_bucket_url")
    else:
        storage = (tmp_path / "shared-store").as_uri()
    nodes = [start_server(tmp_path / f"node{i}", env={"HARBORPY_STORAGE": storage}) for i in (1, 2)]
    yield nodes
    for node in nodes:
        node.stop()


def _patch(node: LiveServer, location: str, data: bytes, start: int) -> requests.Response:
    return authed.patch(
        node.url + location,
        data=data,
        headers={"Content-Range": f"{start}-{start + len(data) - 1}"},
        timeout=30,
    )


def test_chunked_upload_continues_on_another_node(two_nodes: list[LiveServer]) -> None:
    a, b = two_nodes
    pieces = [os.urandom(6 << 20), os.urandom(6 << 20), os.urandom(1 << 20)]
    content = b"".join(pieces)
    digest = "sha256:" + hashlib.sha256(content).hexdigest()

    started = authed.post(f"{a.url}/v2/hop/blob/blobs/uploads/", timeout=10)
    assert started.status_code == 202
    location, offset = started.headers["Location"], 0
    for node, piece in zip((a, b, a), pieces, strict=True):
        answer = _patch(node, location, piece, offset)
        assert answer.status_code == 202, answer.text
        offset += len(piece)
        assert answer.headers["Range"] == f"0-{offset - 1}"
        location = answer.headers["Location"]
    status = authed.get(b.url + location, timeout=10)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{len(content) - 1}"

    done = authed.put(f"{b.url}{location}?digest={digest}", timeout=60)
    assert done.status_code == 201, done.text
    for node in (a, b):
        blob = authed.get(f"{node.url}/v2/hop/blob/blobs/{digest}", timeout=30)
        assert blob.status_code == 200 and blob.content == content


def test_digest_is_verified_after_a_hop(two_nodes: list[LiveServer]) -> None:
    a, b = two_nodes
    first, second = os.urandom(1 << 20), os.urandom(1 << 20)
    location = authed.post(f"{a.url}/v2/hop/bad/blobs/uploads/", timeout=10).headers["Location"]
    location = _patch(a, location, first, 0).headers["Location"]
    location = _patch(b, location, second, len(first)).headers["Location"]
    wrong = "sha256:" + hashlib.sha256(first).hexdigest()
    answer = authed.put(f"{a.url}{location}?digest={wrong}", timeout=30)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert authed.head(f"{b.url}/v2/hop/bad/blobs/{wrong}", timeout=10).status_code == 404


# --- the production topology -------------------------------------------------------------------


def test_compose_file_describes_the_production_topology() -> None:
    import shutil
    import subprocess

    import yaml

    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    web = [name for name, s in services.items() if "serve" in (s.get("command") or [])]
    assert len(web) >= 2, "two or more stateless web nodes"
    for name in web:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")
        assert env["HARBORPY_STORAGE"].startswith("s3://")
        # every node signs and checks tokens with the same key, on a shared volume
        key_dir = str(Path(env["HARBORPY_TOKEN_KEY"]).parent)
        assert any(v.endswith(f":{key_dir}") for v in services[name]["volumes"])
    commands = [" ".join(s.get("command") or []) for s in services.values()]
    assert any("celery" in c and " worker" in c for c in commands)
    assert any("celery" in c and " beat" in c for c in commands)
    assert {"postgres", "redis", "s3", "lb"} <= set(services)
    nginx = (root / "deploy" / "nginx.conf").read_text()
    for name in web:
        assert f"server {name}:5000" in nginx
    if shutil.which("docker-compose"):
        subprocess.run(
            ["docker-compose", "-f", str(root / "docker-compose.yml"), "config", "-q"], check=True
        )


# --- memory ------------------------------------------------------------------------------------


def _worker_peak_rss(server: LiveServer) -> int:
    """VmHWM (peak resident set, bytes) of the server's one gunicorn worker."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    assert len(children) == 1, children
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_server_memory_stays_flat_for_a_large_blob(suite_projects, tmp_path: Path) -> None:
    server = start_server(tmp_path / "node", workers=1)
    try:
        block = os.urandom(1 << 20)
        # Warm up the worker on a small blob, then note its peak resident memory.
        small = "sha256:" + hashlib.sha256(block).hexdigest()
        assert (
            authed.post(
                f"{server.url}/v2/mem/blob/blobs/uploads/?digest={small}", data=block, timeout=30
            ).status_code
            == 201
        )
        assert len(authed.get(f"{server.url}/v2/mem/blob/blobs/{small}", timeout=30).content)
        before = _worker_peak_rss(server)

        count = 512  # 512 MiB, streamed with Transfer-Encoding: chunked as docker sends it
        hasher = hashlib.sha256()
        for _ in range(count):
            hasher.update(block)
        digest = "sha256:" + hasher.hexdigest()
        location = authed.post(f"{server.url}/v2/mem/blob/blobs/uploads/", timeout=10).headers[
            "Location"
        ]
        answer = authed.patch(
            server.url + location, data=(block for _ in range(count)), timeout=300
        )
        assert (
            answer.status_code == 202 and answer.headers["Range"] == f"0-{count * len(block) - 1}"
        )
        done = authed.put(f"{server.url}{answer.headers['Location']}?digest={digest}", timeout=300)
        assert done.status_code == 201, done.text
        with authed.get(f"{server.url}/v2/mem/blob/blobs/{digest}", stream=True, timeout=300) as r:
            received = hashlib.sha256()
            for chunk in r.iter_content(1 << 20):
                received.update(chunk)
        assert "sha256:" + received.hexdigest() == digest
        growth = _worker_peak_rss(server) - before
        assert growth < 48 << 20, (
            f"worker peak memory grew by {growth >> 20} MiB for a 512 MiB blob"
        )
    finally:
        server.stop()


# --- sendfile ------------------------------------------------------------------------------


def test_filesystem_blobs_leave_through_sendfile(suite_projects, tmp_path: Path) -> None:
    """A blob GET hands the file to the kernel: sendfile(2), not reads copied through Python."""
    import subprocess
    import time

    require_tool("strace")
    server = start_server(tmp_path / "node", workers=1)
    try:
        data = os.urandom(8 << 20)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        url = f"{server.url}/v2/sf/blob/blobs"
        assert authed.post(f"{url}/uploads/?digest={digest}", data=data, timeout=30).ok
        worker = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()[0]
        trace = tmp_path / "trace"
        tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", "trace=sendfile", "-o", str(trace), "-p", worker]
        )
        try:
            # strace attaches asynchronously: retry the GET until a sendfile shows up.
            for _ in range(20):
                answer = authed.get(f"{url}/{digest}", timeout=30)
                assert answer.content == data
                if trace.exists() and "sendfile(" in trace.read_text():
                    break
            # Tracing is live now: one more download, traced from its first byte.
            start = trace.stat().st_size
            assert authed.get(f"{url}/{digest}", timeout=30).content == data
            time.sleep(0.5)
        finally:
            tracer.terminate()
            tracer.wait(timeout=10)
        with open(trace) as out:
            out.seek(start)
            calls = [line for line in out.read().splitlines() if "sendfile(" in line]
        assert calls, "the blob was not sent with sendfile(2)"
        assert sum(int(line.rsplit("=", 1)[1]) for line in calls if "= " in line) >= len(data)
    finally:
        server.stop()


def test_a_stalled_body_is_cut_off_and_frees_its_upload(suite_projects, tmp_path: Path) -> None:
    import socket
    import time

    from distribution.models import Upload

    server = start_server(tmp_path / "node", env={"HARBORPY_BODY_TIMEOUT": "2"})
    try:
        location = authed.post(f"{server.url}/v2/lib/stall/blobs/uploads/", timeout=10).headers[
            "Location"
        ]
        upload_id = location.rsplit("/", 1)[1]
        host, port = server.host.split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                f"PATCH {location} HTTP/1.1\r\nHost: {server.host}\r\n"
                f"Authorization: {ADMIN_BASIC}\r\nContent-Length: 1000\r\n\r\n".encode()
                + b"x" * 10
            )
            started = time.monotonic()
            answer = sock.recv(4096)
            waited = time.monotonic() - started
            while b"]}" not in answer and (more := sock.recv(4096)):
                answer += more
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"BLOB_UPLOAD_INVALID" in answer
        assert 1.5 < waited < 15, waited
        upload = Upload.objects.get(pk=upload_id)
        assert (upload.size, upload.busy_since, upload.claim) == (0, None, "")
        # and the upload goes on normally
        data = os.urandom(100)
        assert authed.patch(server.url + location, data=data, timeout=10).status_code == 202
    finally:
        server.stop()
