"""Chunked request bodies (docker and podman stream layers this way), decoded from the socket.

Each test writes the framing itself on a raw connection, so that what the
server receives is exactly what the test means: chunk extensions, trailers,
pieces split at awkward places, a request pipelined behind the body, and
framing errors, which must get a 400 and leave the upload as it was.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from distribution.bodies import _chunked_socket_reader
from tests.distribution.helpers import (
    ADMIN_BASIC,
    MiB,
    digest_of,
    start_upload,
    upload_data_size,
    upload_id_of,
)
from tests.fixtures import authed
from tests.fixtures.server import LiveServer

NAME = "lib/chunked"
MANIFEST_LIMIT = 4 * MiB


def frame(data: bytes, size: int, extension: bytes = b"") -> bytes:
    """``data`` as chunks of ``size`` bytes, without the last chunk."""
    return b"".join(
        b"%x%s\r\n" % (len(data[i : i + size]), extension) + data[i : i + size] + b"\r\n"
        for i in range(0, len(data), size)
    )


def head(registry: LiveServer, path: str, extra: str = "") -> bytes:
    return (
        f"PATCH {path} HTTP/1.1\r\nHost: {registry.host}\r\nAuthorization: {ADMIN_BASIC}\r\n"
        f"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n{extra}\r\n"
    ).encode()


def connect(registry: LiveServer) -> socket.socket:
    host, port = registry.host.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bytes]:
    """One response from ``sock``: status, headers, body, and any bytes read past it."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, f"connection closed before a response: {data!r}"
        data += more
    top, rest = data.split(b"\r\n\r\n", 1)
    lines = top.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        more = sock.recv(65536)
        assert more
        rest += more
    return status, headers, rest[:length], rest[length:]


def path_of(registry: LiveServer, location: str) -> str:
    return location.removeprefix(registry.url)


@pytest.mark.parametrize("size", [1, 7, 32 * 1024, MiB + 3])
def test_chunks_of_any_size_arrive_whole(registry: LiveServer, size: int) -> None:
    data = os.urandom(3 * MiB + 5 if size > 7 else 5000)
    location = start_upload(registry, NAME)
    with connect(registry) as sock:
        sock.sendall(head(registry, path_of(registry, location)) + frame(data, size) + b"0\r\n\r\n")
        status, headers, body, _ = read_response(sock)
    assert status == 202, body
    assert headers["range"] == f"0-{len(data) - 1}"
    done = authed.put(location, params={"digest": digest_of(data)})
    assert done.status_code == 201, done.text
    assert authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest_of(data)}").content == data


def test_framing_split_across_packets_extensions_and_trailers(registry: LiveServer) -> None:
    """Sizes, extensions and CRLFs cut at every place a slow network can cut them."""
    data = os.urandom(200_000)
    wire = (
        frame(data[:70_000], 70_000, b";name=value")
        + frame(data[70_000:], 4096, b' ; q="x y"')
        + b"0;last\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"
    )
    location = start_upload(registry, NAME)
    with connect(registry) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head(registry, path_of(registry, location)))
        for i in range(0, len(wire), 3001):  # cuts fall inside size lines and CRLFs
            sock.sendall(wire[i : i + 3001])
            if i % 30 == 0:
                time.sleep(0.001)
        status, _, body, _ = read_response(sock)
    assert status == 202, body
    assert upload_data_size(registry, upload_id_of(location)) == len(data)
    done = authed.put(location, params={"digest": digest_of(data)})
    assert done.status_code == 201, done.text


def test_a_request_pipelined_behind_a_chunked_body_is_answered(registry: LiveServer) -> None:
    data = os.urandom(100_000)
    location = start_upload(registry, NAME)
    path = path_of(registry, location)
    status_request = (
        f"GET {path} HTTP/1.1\r\nHost: {registry.host}\r\nAuthorization: {ADMIN_BASIC}\r\n\r\n"
    ).encode()
    with connect(registry) as sock:
        # Body, last chunk and the next request in one write: the server reads past the body.
        sock.sendall(head(registry, path) + frame(data, 30_000) + b"0\r\n\r\n" + status_request)
        status, _, body, rest = read_response(sock)
        assert status == 202, body
        # The second answer may already sit in what was read past the first.
        second = rest
        while b"\r\n\r\n" not in second:
            second += sock.recv(65536)
        assert second.startswith(b"HTTP/1.1 204"), second[:200]
        assert f"Range: 0-{len(data) - 1}".encode() in second


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"zz\r\nabc\r\n0\r\n\r\n", id="size-not-hex"),
        pytest.param(b"3\r\nabcdef\r\n0\r\n\r\n", id="data-longer-than-size"),
        pytest.param(b"3;a\rb\r\nabc\r\n0\r\n\r\n", id="bare-cr-in-extension"),
        pytest.param(b"3;a\nb\r\nabc\r\n0\r\n\r\n", id="bare-lf-in-extension"),
        pytest.param(b"3;=x\r\nabc\r\n0\r\n\r\n", id="extension-without-name"),
        pytest.param(b"3\r\nabc\r\n0\r\nX: y\nZ\r\n\r\n", id="bare-lf-in-trailer"),
        pytest.param(b"f" * 17 + b"\r\n", id="size-too-large"),
        pytest.param(b"1" * 9000, id="size-line-without-end"),
    ],
)
def test_bad_framing_is_refused_and_the_upload_keeps_what_it_had(
    registry: LiveServer, bad: bytes
) -> None:
    first = os.urandom(1000)
    location = start_upload(registry, NAME)
    path = path_of(registry, location)
    with connect(registry) as sock:
        sock.sendall(head(registry, path) + frame(first, 1000) + b"0\r\n\r\n")
        assert read_response(sock)[0] == 202
    with connect(registry) as sock:
        sock.sendall(head(registry, path) + bad)
        status, headers, body, _ = read_response(sock)
    assert status == 400, body
    assert b"BLOB_UPLOAD_INVALID" in body and b"chunk" in body, body
    assert headers.get("connection", "").lower() == "close"
    assert upload_data_size(registry, upload_id_of(location)) == len(first)
    current = authed.get(location)
    assert current.status_code == 204
    assert current.headers["Range"] == f"0-{len(first) - 1}"


def test_a_body_that_ends_before_its_last_chunk_stores_nothing_of_it(
    registry: LiveServer,
) -> None:
    location = start_upload(registry, NAME)
    with connect(registry) as sock:
        sock.sendall(head(registry, path_of(registry, location)) + frame(os.urandom(5000), 1000))
        sock.shutdown(socket.SHUT_WR)  # the client is done sending, without a last chunk
        status, _, body, _ = read_response(sock)
    assert status == 400, body
    assert b"ended before its last chunk" in body
    assert upload_data_size(registry, upload_id_of(location)) == 0


def manifest_put_head(registry: LiveServer, reference: str) -> bytes:
    return (
        f"PUT /v2/{NAME}/manifests/{reference} HTTP/1.1\r\nHost: {registry.host}\r\n"
        f"Authorization: {ADMIN_BASIC}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json"
        "\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()


def catalog_request(registry: LiveServer) -> bytes:
    return (
        f"GET /v2/_catalog HTTP/1.1\r\nHost: {registry.host}\r\nAuthorization: {ADMIN_BASIC}"
        "\r\n\r\n"
    ).encode()


def test_refused_on_its_last_piece_the_connection_serves_the_next_request(
    registry: LiveServer,
) -> None:
    """The whole body was read before the refusal: the connection stays usable, and the
    request the client pipelined behind it is answered."""
    body = b"{" + b" " * (MANIFEST_LIMIT - 1) + b"0123456789"  # over the limit in its last bytes
    with connect(registry) as sock:
        sock.sendall(
            manifest_put_head(registry, "big")
            + frame(body, MiB)
            + b"0\r\n\r\n"
            + catalog_request(registry)
        )
        status, headers, answer, rest = read_response(sock)
        assert status == 413, answer
        assert headers.get("connection", "").lower() != "close"
        second = rest
        while b"\r\n\r\n" not in second:
            more = sock.recv(65536)
            assert more, "the connection closed instead of answering the pipelined request"
            second += more
        assert second.startswith(b"HTTP/1.1 200"), second[:200]


def gunicorn_request(wire: bytes) -> tuple[Any, Any, socket.socket]:
    """gunicorn's own parser reading ``wire`` from a socket: (parser, request, client end)."""
    client, server = socket.socketpair()

    def send() -> None:
        with contextlib.suppress(OSError):  # the reader may stop before the end
            client.sendall(wire)
            client.shutdown(socket.SHUT_WR)

    threading.Thread(target=send, daemon=True).start()
    parser = RequestParser(Config(), server, ("127.0.0.1", 1))
    return parser, next(parser), client


def test_a_body_left_unread_closes_the_connection_however_long_its_reader_lives() -> None:
    """Request smuggling: the unread rest of a chunked body must never be parsed as a
    request, even while the stopped reader is still referenced (an exception's traceback)."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    inner = b"0\r\n\r\n" + smuggled  # chunk data that looks like the body's end and a request
    wire = (
        b"PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + frame(os.urandom(2 * MiB), MiB)
        + frame(inner, len(inner))
        + b"0\r\n\r\n"
    )
    parser, request, client = gunicorn_request(wire)
    with client:
        reader = _chunked_socket_reader(request.body)
        assert reader is not None
        first = next(reader)  # one piece read, then the consumer stops: reader kept alive
        assert len(first) == MiB
        assert request.should_close()
        assert next(parser, None) is None  # no next request on this connection
        del reader


def test_a_body_read_to_its_end_hands_the_next_request_on() -> None:
    """Even when the consumer stops at the last piece (a refusal of the last bytes)."""
    data = os.urandom(MiB + 10)
    wire = (
        b"PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + frame(data, 300_000)
        + b"0\r\nX-Trailer: 1\r\n\r\n"
        + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    parser, request, client = gunicorn_request(wire)
    with client:
        reader = _chunked_socket_reader(request.body)
        assert reader is not None
        pieces = [next(reader), next(reader)]  # the whole body; the generator is not finished
        assert b"".join(pieces) == data
        assert not request.should_close()
        following = next(parser)
        assert following.path == "/next"
