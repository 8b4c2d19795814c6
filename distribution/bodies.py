"""Request bodies as streams of fixed-size chunks.

Blob bodies never go through ``request.body``.  With a Content-Length the
body is read through Django's bounded stream; with ``Transfer-Encoding:
chunked`` (docker's streamed PATCH) Django sees no length and would read
nothing, so the server's decoded ``wsgi.input`` is read to its end.

Under gunicorn, a body is read straight from the socket into fresh 1 MiB
buffers, whether of known length or chunked: gunicorn's own readers copy every
byte through several intermediate buffers, which cost more CPU than hashing and
storing it (reading a chunked body, as docker and podman stream layers, took
three times the CPU: docs/performance.md).
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Iterator
from typing import Any, cast

from django.conf import settings

from .exceptions import UploadInvalid

CHUNK_SIZE = 1 << 20
PARTIAL_CHUNK_SECONDS = 10
# Chunked framing: a chunk-size line and the trailer section are bounded (gunicorn's limits).
MAX_SIZE_LINE = 8190
MAX_TRAILERS = 8190 * 32
# RFC 9112 chunk extensions: ;name or ;name=value, a token or a quoted string.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[^"\\\r\n]|\\.)*"'
_CHUNK_EXTENSION = re.compile(
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?)*"
)
# Framing is read in small gulps, so that little of the data passes through the look-ahead.
FRAMING_READ = 4096


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
        stream = request.META["wsgi.input"]
        direct = _chunked_socket_reader(stream)
        chunks = direct if direct is not None else _until_eof(stream)
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


def _chunked_socket_reader(body: Any) -> Iterator[bytes] | None:
    """Decode a gunicorn request's chunked body from its socket, or None if unsure.

    Only for a body nobody has started to read (gunicorn's chunk parser not
    started, nothing buffered): anything else takes the ordinary path.
    """
    reader = getattr(body, "reader", None)
    # A chunked reader keeps its source inside its parser; its request holds it too.
    unreader = getattr(getattr(reader, "req", None), "unreader", None)
    sock = getattr(unreader, "sock", None)
    parser = getattr(reader, "parser", None)
    if (
        reader is None
        or sock is None
        or not hasattr(sock, "recv_into")
        or not hasattr(unreader, "take_buffered")
        or not inspect.isgenerator(parser)
        or inspect.getgeneratorstate(parser) != inspect.GEN_CREATED
        or reader.buf.tell() != 0
        or body.buf.tell() != 0
    ):
        return None
    return _recv_chunked(reader, unreader, sock)


class _Wire:
    """A request's socket, with the bytes read past the framing kept for what follows."""

    def __init__(self, sock: Any, ahead: bytes) -> None:
        self.sock = sock
        self.ahead = bytearray(ahead)

    def _more(self) -> None:
        try:
            data = self.sock.recv(FRAMING_READ)
        except OSError as error:
            raise UploadInvalid(f"request body could not be read: {error}") from None
        if not data:
            raise UploadInvalid("request body ended before its last chunk")
        self.ahead += data

    def line(self, limit: int, what: str) -> bytes:
        searched = 0
        while (end := self.ahead.find(b"\r\n", searched)) < 0:
            if len(self.ahead) > limit:
                raise UploadInvalid(f"chunked body: {what} longer than {limit} bytes")
            searched = max(0, len(self.ahead) - 1)
            self._more()
        line = bytes(self.ahead[:end])
        del self.ahead[: end + 2]
        if b"\n" in line or b"\r" in line:  # framing a lenient proxy would read otherwise
            raise UploadInvalid(f"chunked body: bare LF or CR in {what}")
        return line

    def crlf(self) -> None:
        while len(self.ahead) < 2:
            self._more()
        if self.ahead[:2] != b"\r\n":
            raise UploadInvalid("chunked body: a chunk does not end where its size says")
        del self.ahead[:2]

    def into(self, view: memoryview) -> int:
        """Fill the start of ``view``: from the look-ahead, else with one read."""
        if self.ahead:
            taken = min(len(view), len(self.ahead))
            view[:taken] = self.ahead[:taken]
            del self.ahead[:taken]
            return taken
        try:
            received = self.sock.recv_into(view)
        except OSError as error:
            raise UploadInvalid(f"request body could not be read: {error}") from None
        if received == 0:
            raise UploadInvalid("request body ended before its last chunk")
        return received


def _chunk_size(wire: _Wire, limit: int) -> int:
    line = wire.line(limit, "a chunk-size line")
    size, semicolon, extension = line.partition(b";")
    if semicolon:
        if not _CHUNK_EXTENSION.fullmatch(b";" + extension):
            raise UploadInvalid("chunked body: malformed chunk extension")
        size = size.rstrip(b" \t")
    digits = size.lstrip(b"0") or b"0"  # leading zeros are allowed, and count for nothing
    if not size or len(digits) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size):
        raise UploadInvalid(f"chunked body: bad chunk size {size[:20]!r}")
    return int(digits, 16)


def _skip_trailers(wire: _Wire, limit: int) -> None:
    """Read the trailer section up to its empty line (trailer fields are not used)."""
    budget = limit
    while line := wire.line(budget, "the trailer section"):
        budget -= len(line) + 2
        if budget < 0:
            raise UploadInvalid(f"chunked body: trailer section longer than {limit} bytes")


def _recv_chunked(reader: Any, unreader: Any, sock: Any) -> Iterator[bytes]:
    request = reader.req
    size_line = getattr(request, "limit_request_field_size", 0) or MAX_SIZE_LINE
    trailers = getattr(request, "max_buffer_headers", 0) or MAX_TRAILERS
    # From the first read on, gunicorn must neither parse this body again nor keep the
    # connection, until the body has been read to its end: whenever this generator is
    # finished (or never is), a connection left mid-body closes.
    reader.parser = None
    closing = request.must_close
    request.must_close = True
    wire = _Wire(sock, unreader.take_buffered())
    left = 0  # data bytes of the current chunk still to come
    done = False
    while not done:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        filled = 0
        started = time.monotonic()
        # As for a body of known length: a slow client's bytes go on every few seconds.
        while filled < CHUNK_SIZE and (
            filled == 0 or time.monotonic() - started < PARTIAL_CHUNK_SECONDS
        ):
            if left == 0:
                left = _chunk_size(wire, size_line)
                if left == 0:
                    _skip_trailers(wire, trailers)
                    done = True
                    # The body is over: what was read past it (a pipelined request) goes
                    # back, and the connection may be kept, before the last piece is handed on.
                    unreader.unread(bytes(wire.ahead))
                    request.must_close = closing
                    break
            got = wire.into(view[filled : filled + min(left, CHUNK_SIZE - filled)])
            filled += got
            left -= got
            if left == 0:
                wire.crlf()
        if filled:
            # A fresh bytearray per chunk (never reused), so consumers may keep it.
            yield cast(bytes, buffer if filled == CHUNK_SIZE else buffer[:filled])


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
