"""Request bodies as streams of fixed-size chunks.

Blob bodies never go through ``request.body``.  With a Content-Length the
body is read through Django's bounded stream; with ``Transfer-Encoding:
chunked`` (docker's streamed PATCH) Django sees no length and would read
nothing, so the server's decoded ``wsgi.input`` is read to its end.

Under gunicorn, a body of known length is read straight from the socket into
fresh 1 MiB buffers: gunicorn's own reader copies every byte through several
intermediate buffers, which cost more CPU than hashing and storing it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

from django.conf import settings

from .exceptions import UploadInvalid

CHUNK_SIZE = 1 << 20
PARTIAL_CHUNK_SECONDS = 10


def body_length(request) -> int | None:
    """The declared Content-Length, None when the body is chunked or absent."""
    value = request.META.get("CONTENT_LENGTH")
    if value in (None, ""):
        return None
    try:
        length = int(value)
    except ValueError:
        raise UploadInvalid("Content-Length is not a number") from None
    if length < 0:
        raise UploadInvalid("Content-Length is negative")
    return length


def has_body(request) -> bool:
    length = body_length(request)
    return bool(length) or _is_chunked(request)


def body_chunks(request) -> Iterator[bytes]:
    """Yield the request body in chunks; raise UploadInvalid if it breaks off or stalls.

    A client that sends nothing for HARBORPY_BODY_TIMEOUT seconds is cut off, so a
    stalled or vanished client cannot hold a server thread (or an upload) forever.
    """
    length = body_length(request)
    if length is not None:
        direct = _socket_reader(request.META.get("wsgi.input"), length)
        chunks = direct if direct is not None else _exactly(request, length)
    elif _is_chunked(request):
        chunks = _until_eof(request.META["wsgi.input"])
    else:
        return iter(())
    return _with_timeout(request.META.get("gunicorn.socket"), chunks)


def _with_timeout(sock: Any, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Bound each wait for body bytes on the server's socket (where the server exposes it)."""
    if sock is None or not hasattr(sock, "settimeout"):
        yield from chunks
        return
    previous = sock.gettimeout()
    sock.settimeout(settings.HARBORPY_BODY_TIMEOUT)
    try:
        yield from chunks
    finally:
        sock.settimeout(previous)


def _socket_reader(body: Any, length: int) -> Iterator[bytes] | None:
    """Read a gunicorn request body of known length from its socket, or None if unsure.

    Only for a body nobody has read yet (gunicorn's LengthReader still owes all
    of it); anything else takes the ordinary path.
    """
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    sock = getattr(unreader, "sock", None)
    if (
        sock is None
        or not hasattr(sock, "recv_into")
        or not hasattr(unreader, "take_buffered")
        or getattr(reader, "length", None) != length
        or body.buf.tell() != 0
    ):
        return None
    return _recv_exactly(reader, unreader, sock, length)


def _recv_exactly(reader: Any, unreader: Any, sock: Any, length: int) -> Iterator[bytes]:
    # Bytes gunicorn read ahead together with the headers start the first chunk;
    # anything past this body (a pipelined request) goes back to it.
    ahead = unreader.take_buffered()
    if len(ahead) > length:
        unreader.unread(ahead[length:])
        ahead = ahead[:length]
    remaining = length
    try:
        while remaining > 0:
            buffer = bytearray(min(CHUNK_SIZE, remaining))
            filled = min(len(ahead), len(buffer))
            buffer[:filled], ahead = ahead[:filled], ahead[filled:]
            view = memoryview(buffer)
            started = time.monotonic()
            # A slow client still hands over what it sent every few seconds, so
            # the consumer (an upload renewing its claim) keeps running.
            while filled < len(buffer) and (
                filled == 0 or time.monotonic() - started < PARTIAL_CHUNK_SECONDS
            ):
                try:
                    received = sock.recv_into(view[filled:])
                except OSError as error:
                    raise UploadInvalid(f"request body could not be read: {error}") from None
                if received == 0:
                    got = length - remaining + filled
                    raise UploadInvalid(
                        f"request body ended after {got} of {length} bytes",
                        detail={"received": got, "expected": length},
                    )
                filled += received
            remaining -= filled
            # A fresh bytearray per chunk (never reused), so consumers may keep it.
            yield cast(bytes, buffer if filled == len(buffer) else buffer[:filled])
    finally:
        # What was not read stays gunicorn's to drain before the next request,
        # so a keep-alive connection never mistakes body bytes for a request.
        reader.length = remaining


def _is_chunked(request) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def _exactly(stream, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        chunk = _read(stream, min(CHUNK_SIZE, remaining))
        if not chunk:
            raise UploadInvalid(
                f"request body ended after {length - remaining} of {length} bytes",
                detail={"received": length - remaining, "expected": length},
            )
        remaining -= len(chunk)
        yield chunk


def _until_eof(stream) -> Iterator[bytes]:
    while chunk := _read(stream, CHUNK_SIZE):
        yield chunk


def _read(stream, size: int) -> bytes:
    try:
        return stream.read(size)
    except Exception as error:  # the server's reader raises its own types on a broken body
        raise UploadInvalid(f"request body could not be read: {error}") from None
