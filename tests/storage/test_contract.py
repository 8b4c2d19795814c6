"""The blob-store contract: every test runs against every backend (see conftest.py).

Backend-specific checks (which S3 requests a path uses, that no multipart
upload is left open) are extra assertions inside the shared tests, made only
when the store is an ``S3Store``.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from distribution.storage import (
    BlobMissing,
    BlobStore,
    DigestMismatch,
    StorageError,
    UploadMissing,
)
from distribution.storage.s3 import S3Store

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
EMPTY = "sha256:" + hashlib.sha256(b"").hexdigest()


# --- helpers --------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pattern(size: int, seed: int = 0) -> bytes:
    """Reproducible random bytes (no period, so a misplaced byte range shows)."""
    return random.Random(seed).randbytes(size)


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in chunks of ``size`` bytes (odd sizes exercise the part buffering)."""
    for at in range(0, len(data), size):
        yield data[at : at + size]


def write_pieces(store: BlobStore, upload_id: str, pieces: Iterable[bytes]) -> int:
    """Write each piece with its own ``upload_write``, as chunked PATCH requests do."""
    offset = 0
    for piece in pieces:
        assert store.upload_write(upload_id, offset, chunked(piece, 300_007)) == len(piece)
        offset += len(piece)
    return offset


def read_blob(store: BlobStore, digest: str, start: int = 0, length: int | None = None) -> bytes:
    reader = store.blob_open(digest, start, length)
    try:
        return b"".join(reader.chunks)
    finally:
        reader.close()


def read_upload(store: BlobStore, upload_id: str, size: int) -> bytes:
    return b"".join(store.upload_read(upload_id, size))


def commit(store: BlobStore, data: bytes, *, upload_id: str = "up", verify: bool = True) -> str:
    """Write ``data`` as one piece and commit it; return its digest."""
    digest = sha256(data)
    store.upload_write(upload_id, 0, [data])
    assert store.upload_commit(upload_id, digest, len(data), verify=verify) is True
    return digest


class Boom(Exception):
    """The client went away."""


def dying(data: bytes) -> Iterator[bytes]:
    """Yield ``data`` in odd chunks, then fail like a dropped connection."""
    yield from chunked(data, 1_000_003)
    raise Boom


@contextlib.contextmanager
def s3_calls(store: BlobStore) -> Iterator[list[str]]:
    """Record the names of the S3 operations the store calls (nothing for other backends)."""
    names: list[str] = []
    if not isinstance(store, S3Store):
        yield names
        return

    def record(model: Any, **_kwargs: Any) -> None:
        names.append(model.name)

    events = store.client.meta.events
    events.register("before-call.s3", record, unique_id="contract-test-calls")
    try:
        yield names
    finally:
        events.unregister("before-call.s3", unique_id="contract-test-calls")


def open_multipart_uploads(store: BlobStore) -> list[str]:
    """Keys with an unfinished multipart upload (always empty for other backends)."""
    if not isinstance(store, S3Store):
        return []
    response = store.client.list_multipart_uploads(Bucket=store.bucket)
    return [item["Key"] for item in response.get("Uploads", ())]


def upload_objects(store: BlobStore, upload_id: str) -> list[str]:
    """S3 keys holding an upload's pieces (always empty for other backends)."""
    if not isinstance(store, S3Store):
        return []
    prefix = f"{store.prefix}/uploads/{upload_id}/"
    response = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return [item["Key"] for item in response.get("Contents", ())]


# --- upload, commit, read ---------------------------------------------------------------


def test_pieces_then_verified_commit(store: BlobStore) -> None:
    data = pattern(3 * MiB + 123)
    write_pieces(store, "up", [data[:1000], data[1000 : 2 * MiB], data[2 * MiB :]])
    digest = sha256(data)

    assert store.upload_commit("up", digest, len(data), verify=True) is True

    assert store.blob_size(digest) == len(data)
    reader = store.blob_open(digest)
    try:
        assert (reader.size, reader.length) == (len(data), len(data))
        assert b"".join(reader.chunks) == data
    finally:
        reader.close()
    assert list(store.upload_ids()) == []
    assert upload_objects(store, "up") == []


@pytest.mark.parametrize(
    "layout", [[2000], [1000, 3, 5000], [MiB, 2 * MiB + 1]], ids=["one", "small", "mixed"]
)
def test_unverified_commit(store: BlobStore, layout: list[int]) -> None:
    data = pattern(sum(layout), seed=len(layout))
    pieces, at = [], 0
    for size in layout:
        pieces.append(data[at : at + size])
        at += size
    write_pieces(store, "up", pieces)
    digest = sha256(data)

    with s3_calls(store) as calls:
        assert store.upload_commit("up", digest, len(data), verify=False) is True

    assert read_blob(store, digest) == data
    assert store.blob_size(digest) == len(data)
    assert list(store.upload_ids()) == []
    if isinstance(store, S3Store) and len(layout) == 1:
        assert "GetObject" not in calls, "one piece is copied server-side"
        assert "CopyObject" in calls


@pytest.mark.parametrize("verify", [True, False])
def test_commit_of_stored_digest_returns_false(store: BlobStore, verify: bool) -> None:
    data = pattern(5000)
    digest = commit(store, data, upload_id="first")
    store.upload_write("second", 0, chunked(data, 777))

    assert store.upload_commit("second", digest, len(data), verify=verify) is False

    assert list(store.blob_digests()) == [digest]
    assert read_blob(store, digest) == data
    assert list(store.upload_ids()) == [], "the second upload's data is dropped"


def test_a_stored_digest_cannot_be_claimed_with_other_bytes(store: BlobStore) -> None:
    data = pattern(5000)
    digest = commit(store, data, upload_id="first")
    forged = pattern(5000, seed=9)
    store.upload_write("second", 0, [forged])

    with pytest.raises(DigestMismatch):
        store.upload_commit("second", digest, len(forged), verify=True)

    assert read_blob(store, digest) == data
    assert list(store.upload_ids()) == ["second"], "the upload is kept for the caller to drop"


def test_a_failed_verification_keeps_the_whole_upload(store: BlobStore) -> None:
    data = pattern(3000)
    store.upload_write("up", 0, [data])

    with pytest.raises(DigestMismatch):
        store.upload_commit("up", sha256(b"other"), 2000, verify=True)

    assert b"".join(store.upload_read("up", len(data))) == data


def test_ranges_outside_the_blob_are_refused(store: BlobStore) -> None:
    digest = commit(store, pattern(100))
    for start, length in [(101, None), (50, 51), (-1, 10), (0, 101)]:
        with pytest.raises(StorageError):
            store.blob_open(digest, start, length).close()


@pytest.mark.parametrize("size", [1000, 9 * MiB + 7], ids=["small", "multipart"])
def test_digest_mismatch_stores_nothing(store: BlobStore, size: int) -> None:
    data = pattern(size)
    store.upload_write("up", 0, chunked(data, MiB + 1))
    claimed = sha256(b"something else")

    with pytest.raises(DigestMismatch) as caught:
        store.upload_commit("up", claimed, len(data), verify=True)

    assert (caught.value.expected, caught.value.actual) == (claimed, sha256(data))
    assert store.blob_size(claimed) is None
    assert store.blob_size(sha256(data)) is None
    assert list(store.blob_digests()) == []
    with pytest.raises(BlobMissing):
        store.blob_open(claimed)
    assert open_multipart_uploads(store) == [], "the multipart upload is aborted"
    store.upload_delete("up")
    assert list(store.upload_ids()) == []


@pytest.mark.parametrize("dies_after", [1000, 9 * MiB + 5], ids=["small", "multipart"])
def test_failed_write_leaves_the_upload_at_its_offset(store: BlobStore, dies_after: int) -> None:
    first = pattern(4096, seed=1)
    store.upload_write("up", 0, [first])

    with pytest.raises(Boom):
        store.upload_write("up", len(first), dying(pattern(dies_after, seed=2)))

    assert read_upload(store, "up", len(first)) == first
    with pytest.raises(StorageError):
        read_upload(store, "up", len(first) + 1)
    assert open_multipart_uploads(store) == []
    assert len(upload_objects(store, "up")) == (1 if isinstance(store, S3Store) else 0)

    second = pattern(5000, seed=3)
    assert store.upload_write("up", len(first), [second]) == len(second)
    data = first + second
    assert store.upload_commit("up", sha256(data), len(data), verify=True) is True
    assert read_blob(store, sha256(data)) == data


def test_failed_first_write_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(Boom):
        store.upload_write("up", 0, dying(pattern(2 * MiB)))

    with pytest.raises(StorageError):
        read_upload(store, "up", 1)
    data = pattern(3000)
    assert store.upload_write("up", 0, [data]) == len(data)
    assert read_upload(store, "up", len(data)) == data


def test_upload_read_returns_what_was_written(store: BlobStore) -> None:
    pieces = [b"abc", b"defg", b"hijkl"]
    write_pieces(store, "up", pieces)

    assert read_upload(store, "up", 12) == b"abcdefghijkl"
    assert read_upload(store, "up", 5) == b"abcde", "a prefix may end inside a piece"
    assert read_upload(store, "up", 7) == b"abcdefg"
    assert read_upload(store, "up", 0) == b""
    with pytest.raises(StorageError):
        read_upload(store, "up", 13)


def test_upload_read_of_a_missing_upload(store: BlobStore) -> None:
    with pytest.raises(UploadMissing):
        read_upload(store, "nothing-here", 10)


def test_a_retried_write_replaces_pieces_of_a_write_that_died(store: BlobStore) -> None:
    # The store acknowledged pieces at 10 and 15, but the registry recorded only 10 bytes.
    a, b, d = b"A" * 10, b"B" * 5, b"D" * 5
    write_pieces(store, "up", [a, b, d])
    c = b"C" * 5

    assert store.upload_write("up", 10, [c]) == 5

    assert read_upload(store, "up", 15) == a + c
    with pytest.raises(StorageError):
        read_upload(store, "up", 20)  # the stale piece at 15 is gone
    assert store.upload_commit("up", sha256(a + c), 15, verify=True) is True
    assert read_blob(store, sha256(a + c)) == a + c


def test_a_write_inside_the_last_piece_cuts_it_back(store: BlobStore) -> None:
    store.upload_write("up", 0, [b"0123456789"])

    assert store.upload_write("up", 5, [b"abc"]) == 3

    assert read_upload(store, "up", 8) == b"01234abc"
    assert store.upload_commit("up", sha256(b"01234abc"), 8, verify=False) is True
    assert read_blob(store, sha256(b"01234abc")) == b"01234abc"


def test_a_write_past_the_end_is_refused(store: BlobStore) -> None:
    store.upload_write("up", 0, [b"0123456789"])

    with pytest.raises(StorageError):
        store.upload_write("up", 20, [b"gap"])
    with pytest.raises(StorageError):
        store.upload_write("other", 5, [b"no start"])
    assert read_upload(store, "up", 10) == b"0123456789"


@pytest.mark.parametrize("verify", [True, False])
def test_commit_of_a_prefix_of_the_upload(store: BlobStore, verify: bool) -> None:
    data = pattern(20_000)
    write_pieces(store, "up", [data[:7000], data[7000:]])

    assert store.upload_commit("up", sha256(data[:12_000]), 12_000, verify=verify) is True

    assert read_blob(store, sha256(data[:12_000])) == data[:12_000]


def test_commit_of_more_than_was_written(store: BlobStore) -> None:
    data = pattern(1000)
    store.upload_write("up", 0, [data])

    with pytest.raises(StorageError):
        store.upload_commit("up", sha256(data + b"x"), 1001, verify=False)
    with pytest.raises(UploadMissing):
        store.upload_commit("nothing-here", sha256(data), 1000, verify=True)
    assert list(store.blob_digests()) == []


# --- ranges, missing blobs, deletion, listing ---------------------------------------------


def test_range_reads(store: BlobStore) -> None:
    data = pattern(2 * MiB + 10)
    digest = commit(store, data)
    n = len(data)
    ranges = [
        (0, None),
        (0, 1),
        (1, None),
        (n - 1, None),  # the last byte
        (n - 1, 1),
        (MiB - 3, MiB + 6),  # across read-chunk boundaries
        (MiB, MiB),
        (12345, 0),
        (n, None),  # nothing left
        (0, n),
    ]
    for start, length in ranges:
        expected = data[start:] if length is None else data[start : start + length]
        reader = store.blob_open(digest, start, length)
        try:
            assert (reader.size, reader.length) == (n, len(expected)), (start, length)
            assert b"".join(reader.chunks) == expected, (start, length)
        finally:
            reader.close()


def test_missing_blob(store: BlobStore) -> None:
    digest = sha256(b"never stored")

    assert store.blob_size(digest) is None
    with pytest.raises(BlobMissing):
        store.blob_open(digest)
    with pytest.raises(BlobMissing):
        store.blob_open(digest, 10, 5)


def test_blob_delete(store: BlobStore) -> None:
    store.blob_delete(sha256(b"never stored"))  # not an error
    digest = commit(store, b"some bytes")

    store.blob_delete(digest)

    assert store.blob_size(digest) is None
    with pytest.raises(BlobMissing):
        store.blob_open(digest)
    assert list(store.blob_digests()) == []
    store.blob_delete(digest)


def test_blob_delete_many(store: BlobStore) -> None:
    kept = commit(store, b"kept", upload_id="k")
    gone = [commit(store, f"gone {i}".encode(), upload_id=f"g{i}") for i in range(5)]
    missing = sha256(b"never stored")

    with s3_calls(store) as calls:
        store.blob_delete_many([*gone, missing])

    assert sorted(store.blob_digests()) == [kept]
    for digest in gone:
        assert store.blob_size(digest) is None
    assert read_blob(store, kept) == b"kept"
    if isinstance(store, S3Store):
        assert calls == ["DeleteObjects"], "one batched request, not one per blob"
    store.blob_delete_many([])  # nothing to do is not an error
    store.blob_delete_many(iter(gone))


def test_blob_delete_many_batches_of_a_thousand(store: BlobStore) -> None:
    if not isinstance(store, S3Store):
        pytest.skip("request batching is an S3 matter")
    digests = [sha256(str(i).encode()) for i in range(2001)]  # none stored: still deleted fine

    with s3_calls(store) as calls:
        store.blob_delete_many(digests)

    assert calls == ["DeleteObjects"] * 3


def test_upload_list_gives_each_session_and_its_last_write(store: BlobStore) -> None:
    before = time.time()
    write_pieces(store, "first", [b"one", b"two"])
    write_pieces(store, "second", [b"three"])
    after = time.time()

    listed = dict(store.upload_list())

    assert sorted(listed) == ["first", "second"] == sorted(store.upload_ids())
    for modified in listed.values():
        # object stores keep whole seconds
        assert before - 2 <= modified <= after + 2, (before, modified, after)
    store.upload_delete("first")
    assert [upload_id for upload_id, _ in store.upload_list()] == ["second"]


def test_listing(store: BlobStore) -> None:
    d1 = commit(store, b"one", upload_id="u1")
    d2 = commit(store, b"two", upload_id="u2")
    for upload_id in ["ab", "abc", "x_1-Z"]:
        write_pieces(store, upload_id, [upload_id.encode(), b"more"])

    assert sorted(store.blob_digests()) == sorted([d1, d2])
    assert sorted(store.upload_ids()) == ["ab", "abc", "x_1-Z"]

    store.upload_delete("ab")  # "abc" shares its first letters and must survive
    assert sorted(store.upload_ids()) == ["abc", "x_1-Z"]
    assert read_upload(store, "abc", 7) == b"abcmore"


def test_upload_delete_removes_everything(store: BlobStore) -> None:
    write_pieces(store, "up", [pattern(9 * MiB), b"tail"])

    store.upload_delete("up")

    assert list(store.upload_ids()) == []
    with pytest.raises(UploadMissing):
        read_upload(store, "up", 1)
    assert upload_objects(store, "up") == []
    store.upload_delete("up")  # a missing upload is not an error
    store.upload_delete("never-there")


def test_stores_under_different_prefixes_are_separate(
    make_store: Callable[..., BlobStore],
) -> None:
    root, tenant = make_store(""), make_store("tenant")
    d1 = commit(tenant, b"tenant blob")
    tenant.upload_write("t-up", 0, [b"x"])
    d2 = commit(root, b"root blob")
    root.upload_write("r-up", 0, [b"y"])

    assert list(tenant.blob_digests()) == [d1]
    assert list(root.blob_digests()) == [d2]
    assert list(tenant.upload_ids()) == ["t-up"]
    assert list(root.upload_ids()) == ["r-up"]
    assert root.blob_size(d1) is None
    assert read_blob(tenant, d1) == b"tenant blob"


# --- special blobs ----------------------------------------------------------------------


@pytest.mark.parametrize("verify", [True, False])
def test_empty_blob(store: BlobStore, verify: bool) -> None:
    assert store.upload_write("up", 0, []) == 0
    assert store.upload_write("up", 0, [b""]) == 0
    assert upload_objects(store, "up") == [], "a piece of 0 bytes writes nothing"

    assert store.upload_commit("up", EMPTY, 0, verify=verify) is True

    assert store.blob_size(EMPTY) == 0
    reader = store.blob_open(EMPTY)
    try:
        assert (reader.size, reader.length) == (0, 0)
        assert b"".join(reader.chunks) == b""
    finally:
        reader.close()
    assert list(store.blob_digests()) == [EMPTY]
    assert store.upload_commit("never-written", EMPTY, 0, verify=verify) is False


def test_sha512(store: BlobStore) -> None:
    data = pattern(70_000)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    write_pieces(store, "up", [data[:30_000], data[30_000:]])

    assert store.upload_commit("up", digest, len(data), verify=True) is True

    assert read_blob(store, digest) == data
    assert list(store.blob_digests()) == [digest]
    store.upload_write("bad", 0, [data])
    wrong = "sha512:" + hashlib.sha512(b"x").hexdigest()
    with pytest.raises(DigestMismatch) as caught:
        store.upload_commit("bad", wrong, len(data), verify=True)
    assert caught.value.actual == digest


def test_invalid_names_are_refused(store: BlobStore) -> None:
    for bad in ["sha256:XYZ", "md5:" + "0" * 32, "sha256:" + "0" * 63]:
        with pytest.raises(ValueError):
            store.blob_size(bad)
        with pytest.raises(ValueError):
            store.blob_open(bad)
    with pytest.raises(ValueError):
        store.upload_write("../escape", 0, [b"x"])


def test_blob_put(store: BlobStore) -> None:
    data = pattern(10_000)
    assert store.blob_put(sha256(data), chunked(data, 999), upload_id="put1") is True
    assert store.blob_put(sha256(data), chunked(data, 999), upload_id="put2") is False
    with pytest.raises(DigestMismatch):
        store.blob_put(sha256(b"other"), [data], upload_id="put3")
    assert read_blob(store, sha256(data)) == data
    assert list(store.upload_ids()) == []


# --- S3 part rules: copy when allowed, stream otherwise ----------------------------------


@pytest.mark.parametrize("verify", [True, False])
def test_big_pieces_are_copied_server_side(store: BlobStore, verify: bool) -> None:
    data = pattern(13 * MiB)
    write_pieces(store, "up", [data[: 6 * MiB], data[6 * MiB : 12 * MiB], data[12 * MiB :]])

    with s3_calls(store) as calls:
        assert store.upload_commit("up", sha256(data), len(data), verify=verify) is True

    assert read_blob(store, sha256(data)) == data
    if isinstance(store, S3Store):
        if verify:
            assert "GetObject" in calls and "UploadPartCopy" not in calls
        else:
            assert calls.count("UploadPartCopy") == 3
            assert "GetObject" not in calls and "UploadPart" not in calls


def test_a_small_piece_in_the_middle_forces_the_streamed_commit(store: BlobStore) -> None:
    data = pattern(13 * MiB, seed=5)
    write_pieces(store, "up", [data[: 6 * MiB], data[6 * MiB : 7 * MiB], data[7 * MiB :]])

    with s3_calls(store) as calls:
        assert store.upload_commit("up", sha256(data), len(data), verify=False) is True

    assert read_blob(store, sha256(data)) == data
    if isinstance(store, S3Store):
        assert "UploadPartCopy" not in calls
        assert calls.count("UploadPart") == 2  # 13 MiB in 8 MiB parts


def test_a_big_write_is_a_multipart_upload(store: BlobStore) -> None:
    data = pattern(17 * MiB + 3, seed=6)

    with s3_calls(store) as calls:
        assert store.upload_write("up", 0, chunked(data, MiB + 1)) == len(data)

    if isinstance(store, S3Store):
        assert calls.count("UploadPart") == 3 and "CompleteMultipartUpload" in calls
        assert len(upload_objects(store, "up")) == 1
    assert read_upload(store, "up", len(data)) == data
    assert store.upload_commit("up", sha256(data), len(data), verify=False) is True
    assert read_blob(store, sha256(data)) == data
    assert read_blob(store, sha256(data), 9 * MiB - 1, 2) == data[9 * MiB - 1 : 9 * MiB + 1]


def test_a_huge_piece_is_stored_as_several_objects(store: BlobStore) -> None:
    if isinstance(store, S3Store):
        store.max_piece_object = 8 * MiB  # 5 GiB in production
    data = pattern(20 * MiB, seed=7)

    with pytest.raises(Boom):
        store.upload_write("up", 0, dying(data))
    assert upload_objects(store, "up") == []
    assert open_multipart_uploads(store) == []

    assert store.upload_write("up", 0, chunked(data, 3 * MiB)) == len(data)
    if isinstance(store, S3Store):
        assert len(upload_objects(store, "up")) == 3  # 8 + 8 + 4 MiB
    assert read_upload(store, "up", len(data)) == data
    assert store.upload_commit("up", sha256(data), len(data), verify=False) is True
    assert read_blob(store, sha256(data)) == data


# --- direct URLs ---------------------------------------------------------------------------


def test_blob_url(store: BlobStore) -> None:
    data = pattern(3 * MiB + 1)
    digest = commit(store, data)

    url = store.blob_url(digest, 300)

    if not isinstance(store, S3Store):
        assert url is None
        return
    assert url is not None and url.startswith("http://127.0.0.1")
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert response.read() == data


# --- bounded memory --------------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import hashlib, resource, sys
    from distribution.storage import open_store

    MiB = 1 << 20
    TOTAL = int(sys.argv[2])
    store = open_store(sys.argv[1], fsync=False)

    def status(field):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise LookupError(field)

    def reset_peak():
        # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS,
        # so the transient peak of importing boto3 does not hide what follows
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return status("VmRSS"), lambda: status("VmHWM")
        except OSError:
            peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            return peak(), peak

    # warm up every code path on a tiny blob so imports and connections are in the baseline
    store.blob_put("sha256:" + hashlib.sha256(b"warm").hexdigest(), [b"warm"], upload_id="warm")
    reader = store.blob_open("sha256:" + hashlib.sha256(b"warm").hexdigest())
    b"".join(reader.chunks)
    reader.close()

    before, peak = reset_peak()
    block = bytes(range(256)) * 4096
    sent = hashlib.sha256()

    def stream():
        for i in range(TOTAL // MiB):
            chunk = i.to_bytes(4, "big") + block[4:]
            sent.update(chunk)
            yield chunk

    written = store.upload_write("big", 0, stream())
    digest = "sha256:" + sent.hexdigest()
    assert store.upload_commit("big", digest, written, verify=True)
    received = hashlib.sha256()
    reader = store.blob_open(digest)
    for chunk in reader.chunks:
        received.update(chunk)
    reader.close()
    assert "sha256:" + received.hexdigest() == digest
    print(written, peak() - before)
    """
)


def test_memory_stays_bounded_for_a_200_mib_blob(store_url: str) -> None:
    # A child process, so the measurement sees only the store (an in-process
    # moto server keeps every byte it receives in this process).
    total = 200 * MiB
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, store_url, str(total)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    written, growth = map(int, result.stdout.split())
    assert written == total
    assert growth < 64 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB"
