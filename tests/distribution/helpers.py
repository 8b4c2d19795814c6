"""Shared helpers of the HTTP-level /v2/ tests.

Push blobs and manifests with ``requests``, build manifest documents, look at
the live server's blob store on disk, and send what ``requests`` cannot: paths
it would normalise, repeated header lines, chunked bodies, and bodies that
break off.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from requests.structures import CaseInsensitiveDict

from tests.fixtures import authed
from tests.fixtures.server import ADMIN, LiveServer

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"

MiB = 1 << 20
ADMIN_BASIC = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()

# --- digests, URLs, responses -------------------------------------------------------------


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def absolute(registry: LiveServer, location: str) -> str:
    """A Location header made absolute (the spec allows relative ones)."""
    return urljoin(registry.url + "/", location)


@dataclass
class RawResponse:
    """What ``send`` got back, shaped like the parts of ``requests.Response`` the tests use."""

    status_code: int
    headers: CaseInsensitiveDict
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


Response = requests.Response | RawResponse


def assert_error(response: Response, status: int, code: str) -> dict[str, Any]:
    """Check an OCI error response: status, JSON body with one error of ``code``; return it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/json", response.headers
    body = response.json()
    assert list(body) == ["errors"], body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert set(error) == {"code", "message", "detail"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    return error


def send(
    registry: LiveServer,
    method: str,
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | Iterable[bytes] | None = None,
) -> RawResponse:
    """One request through http.client: the path goes out as given, headers may repeat.

    A ``bytes`` body is sent with Content-Length, any other iterable with
    ``Transfer-Encoding: chunked``.  It goes as the admin unless ``headers``
    carry an Authorization of their own.
    """
    headers = list(headers)
    if not any(name.lower() == "authorization" for name, _ in headers):
        headers.append(("Authorization", ADMIN_BASIC))
    connection = http.client.HTTPConnection(registry.host, timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        chunked = body is not None and not isinstance(body, bytes)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body, encode_chunked=chunked)
        response = connection.getresponse()
        return RawResponse(
            response.status, CaseInsensitiveDict(response.getheaders()), response.read()
        )
    finally:
        connection.close()


def open_partial_request(
    registry: LiveServer, method: str, path: str, *, body: bytes, declared: int | None = None
) -> socket.socket:
    """Send a request whose body breaks off after ``body``, and leave the socket open.

    With ``declared`` the request announces that many bytes in Content-Length;
    without, it is chunked and ``body`` goes out as one chunk with no last-chunk.
    The caller closes the socket: a client that goes away mid-body.
    """
    host, port = registry.host.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    framing = (
        f"Content-Length: {declared}\r\n"
        if declared is not None
        else "Transfer-Encoding: chunked\r\n"
    )
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {registry.host}\r\nAuthorization: {ADMIN_BASIC}\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}\r\n"
    ).encode()
    if declared is None:
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n"
    sock.sendall(head + body)
    return sock


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


# --- blobs and uploads --------------------------------------------------------------------


def push_blob(registry: LiveServer, name: str, data: bytes) -> str:
    """Push ``data`` as one monolithic POST; return its digest."""
    digest = digest_of(data)
    response = authed.post(
        f"{registry.url}/v2/{name}/blobs/uploads/", params={"digest": digest}, data=data
    )
    assert response.status_code == 201, response.text
    return digest


def start_upload(registry: LiveServer, name: str) -> str:
    """Open an upload session; return its absolute URL."""
    response = authed.post(f"{registry.url}/v2/{name}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return absolute(registry, response.headers["Location"])


def patch_chunk(location: str, data: bytes, start: int) -> requests.Response:
    """PATCH one chunk with its Content-Range."""
    return authed.patch(
        location,
        data=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(data) - 1}",
        },
    )


def upload_id_of(location: str) -> str:
    return location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[1]


def storage_root(registry: LiveServer) -> Path:
    return registry.data / "storage"


def blob_file(registry: LiveServer, digest: str) -> Path:
    algorithm, encoded = digest.split(":", 1)
    return storage_root(registry) / "blobs" / algorithm / encoded[:2] / encoded


def blob_files(registry: LiveServer) -> set[Path]:
    return {p for p in (storage_root(registry) / "blobs").rglob("*") if p.is_file()}


def upload_dirs(registry: LiveServer) -> set[str]:
    uploads = storage_root(registry) / "uploads"
    return {p.name for p in uploads.iterdir()} if uploads.exists() else set()


def upload_data_size(registry: LiveServer, upload_id: str) -> int | None:
    """Bytes in an upload's data file on disk, None when there is none."""
    path = storage_root(registry) / "uploads" / upload_id / "data"
    return path.stat().st_size if path.exists() else None


# --- manifests ----------------------------------------------------------------------------


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def make_config(architecture: str = "amd64", os_name: str = "linux") -> bytes:
    """An image config that is unique per call, so tests never share blobs by accident."""
    return json.dumps(
        {
            "architecture": architecture,
            "os": os_name,
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"nonce": os.urandom(8).hex()}},
        }
    ).encode()


def make_image_manifest(
    config: bytes, layers: list[bytes], *, media_type: str = OCI_MANIFEST, **fields: Any
) -> dict[str, Any]:
    """An image manifest (Docker schema2 or OCI) for the given config and layer bytes."""
    docker = media_type == DOCKER_MANIFEST
    return {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, layer) for layer in layers],
        **fields,
    }


def make_index(
    children: list[Pushed], *, media_type: str = OCI_INDEX, **fields: Any
) -> dict[str, Any]:
    """An index (or Docker manifest list) of pushed manifests, with their platforms."""
    entries = []
    for child in children:
        entry: dict[str, Any] = {
            "mediaType": child.media_type,
            "digest": child.digest,
            "size": len(child.body),
        }
        if child.platform:
            entry["platform"] = child.platform
        entries.append(entry)
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": entries, **fields}


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def odd_encoding(document: dict[str, Any]) -> bytes:
    """The document with keys reversed, tabs, odd separators, raw UTF-8 and a trailing newline.

    A registry that re-serialises the manifest cannot give these bytes back.
    """

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reverse(v) for k, v in reversed(value.items())}
        if isinstance(value, list):
            return [reverse(v) for v in value]
        return value

    text = json.dumps(reverse(document), indent="\t", separators=(" ,", " :  "), ensure_ascii=False)
    return ("  " + text + "\r\n\n").encode()


@dataclass
class Pushed:
    """A manifest the registry accepted."""

    digest: str
    body: bytes
    media_type: str
    blobs: list[str] = field(default_factory=list)
    platform: dict[str, str] | None = None


def push_manifest(
    registry: LiveServer,
    name: str,
    reference: str,
    body: bytes | dict[str, Any],
    media_type: str | None,
) -> requests.Response:
    """PUT a manifest (a document is JSON-encoded) with ``media_type`` as Content-Type."""
    data = encode(body) if isinstance(body, dict) else body
    headers = {"Content-Type": media_type} if media_type else {}
    return authed.put(f"{registry.url}/v2/{name}/manifests/{reference}", data=data, headers=headers)


def push_accepted(
    registry: LiveServer, name: str, reference: str, body: bytes, media_type: str, **kw: Any
) -> Pushed:
    response = push_manifest(registry, name, reference, body, media_type)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest_of(body)
    return Pushed(digest_of(body), body, media_type, **kw)


def push_image_blobs(
    registry: LiveServer, name: str, *, layer_sizes: tuple[int, ...] = (300, 1200)
) -> tuple[bytes, list[bytes]]:
    """Push a fresh config and layers to ``name``; return their bytes."""
    config = make_config()
    layers = [os.urandom(size) for size in layer_sizes]
    for blob in [config, *layers]:
        push_blob(registry, name, blob)
    return config, layers


def push_image(
    registry: LiveServer,
    name: str,
    reference: str,
    *,
    media_type: str = OCI_MANIFEST,
    architecture: str = "amd64",
    encoder: Callable[[dict[str, Any]], bytes] = encode,
    **fields: Any,
) -> Pushed:
    """Push a fresh image (config, layers, manifest) under ``reference``."""
    config = make_config(architecture)
    layers = [os.urandom(256), os.urandom(1024)]
    for blob in [config, *layers]:
        push_blob(registry, name, blob)
    body = encoder(make_image_manifest(config, layers, media_type=media_type, **fields))
    return push_accepted(
        registry,
        name,
        reference,
        body,
        media_type,
        blobs=[digest_of(b) for b in [config, *layers]],
        platform={"architecture": architecture, "os": "linux"},
    )


def push_index(
    registry: LiveServer,
    name: str,
    reference: str,
    *,
    media_type: str = OCI_INDEX,
    encoder: Callable[[dict[str, Any]], bytes] = encode,
    **fields: Any,
) -> tuple[Pushed, list[Pushed]]:
    """Push an arm64 and an amd64 image, then an index of both; return (index, children)."""
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    children = [
        push_image(registry, name, f"{arch}-child", media_type=child_type, architecture=arch)
        for arch in ("arm64", "amd64")
    ]
    body = encoder(make_index(children, media_type=media_type, **fields))
    return push_accepted(registry, name, reference, body, media_type), children


def artifact_document(artifact_type: str, payload: bytes, subject: Any = None) -> dict[str, Any]:
    """An OCI artifact manifest: artifactType, the empty config, one payload layer, and a
    subject when given (anything with media_type, digest and body)."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(OCI_EMPTY, EMPTY_JSON),
        "layers": [descriptor("application/octet-stream", payload)],
    }
    if subject is not None:
        document["subject"] = {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.body),
        }
    return document


def push_artifact(
    registry: LiveServer,
    name: str,
    reference: str | None,
    *,
    artifact_type: str,
    subject: Pushed | None = None,
    annotations: dict[str, str] | None = None,
    encoder: Callable[[dict[str, Any]], bytes] = encode,
) -> Pushed:
    """Push an OCI artifact (``artifact_document``) by tag, or by its digest when ``reference``
    is None."""
    payload = os.urandom(100)
    push_blob(registry, name, EMPTY_JSON)
    push_blob(registry, name, payload)
    document = artifact_document(artifact_type, payload, subject)
    if annotations is not None:
        document["annotations"] = annotations
    body = encoder(document)
    return push_accepted(registry, name, reference or digest_of(body), body, OCI_MANIFEST)


def get_manifest(
    registry: LiveServer, name: str, reference: str, accept: str | None = None
) -> requests.Response:
    """GET a manifest; ``accept=None`` sends no Accept header at all."""
    return authed.get(f"{registry.url}/v2/{name}/manifests/{reference}", headers={"Accept": accept})


def tags_of(registry: LiveServer, name: str) -> list[str]:
    response = authed.get(f"{registry.url}/v2/{name}/tags/list")
    assert response.status_code == 200, response.text
    return response.json()["tags"]


def next_link(response: Response) -> str | None:
    """The target of a `Link: <...>; rel="next"` header, if any."""
    value = response.headers.get("Link")
    if value is None:
        return None
    target, _, params = value.partition(";")
    assert params.strip() == 'rel="next"', value
    assert target.startswith("<") and target.endswith(">"), value
    return target[1:-1]
