"""Request bodies as streams of fixed-size chunks.

Blob bodies never go through ``request.body``.  With a Content-Length the
body is read through Django's bounded stream; with ``Transfer-Encoding:
chunked`` (docker's streamed PATCH) Django sees no length and would read
nothing, so the server's decoded ``wsgi.input`` is read to its end.
"""

from __future__ import annotations

from collections.abc import Iterator

from .exceptions import UploadInvalid

CHUNK_SIZE = 1 << 20


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
    """Yield the request body in chunks; raise UploadInvalid if it breaks off."""
    length = body_length(request)
    if length is not None:
        return _exactly(request, length)
    if _is_chunked(request):
        return _until_eof(request.META["wsgi.input"])
    return iter(())


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
