"""Blob store on a local folder or an NFS mount.

Uploads are one file each, appended in place; a commit fsyncs the file and
renames it under its digest (``os.replace`` is atomic within one filesystem,
and uploads/ and blobs/ share the root folder so the rename never copies).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import paths
from .base import CHUNK_SIZE, BlobReader, BlobStore
from .errors import BlobMissing, DigestMismatch, StorageError, UploadMissing


class FilesystemStore(BlobStore):
    """Blobs under ``<root>/blobs``, upload sessions under ``<root>/uploads``."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)

    def _upload_file(self, upload_id: str) -> Path:
        return self.root / paths.upload_prefix(upload_id) / "data"

    def _blob_file(self, digest: str) -> Path:
        return self.root / paths.blob_key(digest)

    # --- upload sessions -----------------------------------------------------------------

    def upload_write(self, upload_id: str, offset: int, chunks: Iterable[bytes]) -> int:
        path = self._upload_file(upload_id)
        if offset == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        else:
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                raise UploadMissing(upload_id) from None
        try:
            stored = os.fstat(fd).st_size
            if stored < offset:
                raise StorageError(f"upload {upload_id} holds {stored} bytes, not {offset}")
            if stored > offset:  # the tail of a write that died before it was acknowledged
                os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            written = 0
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                    written += len(chunk)
            except BaseException:
                # Cut back only what this call wrote: if the file no longer ends
                # where it left it, another writer owns the upload now.
                if os.fstat(fd).st_size == offset + written:
                    os.ftruncate(fd, offset)
                raise
            if self.fsync:
                _start_writeback(fd, offset, written)
            return written
        finally:
            os.close(fd)

    def upload_read(self, upload_id: str, size: int) -> Iterator[bytes]:
        if size == 0:
            return iter(())
        try:
            fh = open(self._upload_file(upload_id), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise UploadMissing(upload_id) from None
        return _read_range(fh, size)

    def upload_commit(self, upload_id: str, digest: str, size: int, *, verify: bool) -> bool:
        source = self._upload_file(upload_id)
        target = self._blob_file(digest)
        try:
            fd = os.open(source, os.O_RDWR)
        except FileNotFoundError:
            if size == 0:  # an empty blob: nothing was ever written
                source.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(source, os.O_RDWR | os.O_CREAT, 0o644)
            else:
                raise UploadMissing(upload_id) from None
        try:
            stored = os.fstat(fd).st_size
            if stored < size:
                raise StorageError(f"upload {upload_id} holds {stored} bytes, not {size}")
            if verify:  # before anything changes, and even when the blob is stored already
                actual = _hash_fd(fd, paths.algorithm_of(digest), size)
                if actual != digest:
                    raise DigestMismatch(digest, actual)
            if stored > size:
                os.ftruncate(fd, size)
            if target.exists():
                self.upload_delete(upload_id)
                return False
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        created = not target.parent.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        if self.fsync:
            _fsync_dir(target.parent)
            if created:  # the new folder's own entry must reach the disk too
                _fsync_dir(target.parent.parent)
        self.upload_delete(upload_id)
        return True

    def upload_delete(self, upload_id: str) -> None:
        shutil.rmtree(self.root / paths.upload_prefix(upload_id), ignore_errors=True)

    def upload_ids(self) -> Iterator[str]:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root / "uploads"):
                if entry.is_dir():
                    yield entry.name

    def upload_list(self) -> Iterator[tuple[str, float]]:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root / "uploads"):
                if not entry.is_dir():
                    continue
                try:  # the data file changes with every write; the folder only when made
                    modified = os.stat(os.path.join(entry.path, "data")).st_mtime
                except FileNotFoundError:
                    try:
                        modified = entry.stat().st_mtime
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                yield entry.name, modified

    # --- blobs ------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        try:
            return self._blob_file(digest).stat().st_size
        except FileNotFoundError:
            return None

    def blob_open(self, digest: str, start: int = 0, length: int | None = None) -> BlobReader:
        try:
            fh = open(self._blob_file(digest), "rb")  # noqa: SIM115 - the reader owns it
        except FileNotFoundError:
            raise BlobMissing(digest) from None
        size = os.fstat(fh.fileno()).st_size
        if length is None:
            length = size - start
        if start < 0 or length < 0 or start + length > size:
            fh.close()
            raise StorageError(f"range {start}+{length} is outside the blob's {size} bytes")
        fh.seek(start)
        return BlobReader(
            size=size, length=length, chunks=_read_range(fh, length), file=fh, close=fh.close
        )

    def blob_delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._blob_file(digest).unlink()

    def blob_digests(self) -> Iterator[str]:
        base = self.root / "blobs"
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                key = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                digest = paths.digest_from_blob_key(key)
                if digest:
                    yield digest


def _read_range(fh, length: int) -> Iterator[bytes]:
    """Yield ``length`` bytes from the file's current position in fixed chunks, then close it."""
    try:
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise StorageError("blob is shorter than its recorded size")
            remaining -= len(chunk)
            yield chunk
    finally:
        fh.close()


def _hash_fd(fd: int, algorithm: str, size: int) -> str:
    """Hash the first ``size`` bytes of an open file."""
    hasher = hashlib.new(algorithm)
    os.lseek(fd, 0, os.SEEK_SET)
    remaining = size
    while remaining > 0:
        chunk = os.read(fd, min(CHUNK_SIZE, remaining))
        if not chunk:
            break
        hasher.update(chunk)
        remaining -= len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


_SYNC_FILE_RANGE_WRITE = 2
_libc: Any = None


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a piece to disk now, without waiting for it.

    By the time the upload is committed most of it is on disk, so the commit's
    fsync has little left to flush.  A no-op where sync_file_range(2) is missing.
    """
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name, use_errno=True) if name else False
    function = getattr(_libc, "sync_file_range", None) if _libc else None
    if function is not None and length > 0:
        function(
            ctypes.c_int(fd),
            ctypes.c_int64(offset),
            ctypes.c_int64(length),
            ctypes.c_uint(_SYNC_FILE_RANGE_WRITE),
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
