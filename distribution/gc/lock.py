"""The lock that lets one garbage collection run at a time, across processes and nodes.

On PostgreSQL a session-level advisory lock (``pg_try_advisory_lock``): the
server drops it when the connection ends, so a collector that dies leaves no
stale lock.  On SQLite, the embedded single-node setup, an exclusive
``flock`` on a file beside the database file: every process that can reach
the database can reach it, and the kernel drops it when the process ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection

# "hpgc" as a number: the advisory lock key every harborpy process uses for GC.
ADVISORY_KEY = 0x68706763


# Serializes starting runs from the API and console (check for an active run, then record).
START_KEY = ADVISORY_KEY + 1


class GCLocked(Exception):
    """Another garbage collection (or a push finishing one's deletion) holds the lock."""


@contextlib.contextmanager
def gc_lock() -> Iterator[None]:
    """Hold the garbage-collection lock for the block, or raise GCLocked at once."""
    if connection.vendor == "postgresql":
        with _advisory_lock():
            yield
    elif connection.vendor == "sqlite":
        with _file_lock(_lock_path()):
            yield
    else:
        # harborpy supports PostgreSQL and SQLite (DATABASE_URL); nothing else gets this far.
        raise ImproperlyConfigured(
            f"garbage collection needs PostgreSQL or SQLite, not {connection.vendor}"
        )


@contextlib.contextmanager
def gc_start_lock() -> Iterator[None]:
    """Hold the lock that serializes starting runs, or raise GCLocked at once.

    Separate from ``gc_lock``: a collector holds that one for its whole run.
    """
    if connection.vendor == "postgresql":
        with _advisory_lock(START_KEY):
            yield
    else:
        with _file_lock(_lock_path(".gc-start-lock")):
            yield


def gc_lock_held() -> bool:
    """Whether some process holds the collectors' lock now (without taking it).

    On SQLite the probe takes the lock for an instant; callers use it only while
    no run is pending, so no collector is about to take it.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                # Advisory locks are per database; pg_locks shows the whole cluster's.
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND classid = 0 AND objid = %s AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database()))",
                [ADVISORY_KEY],
            )
            (held,) = cursor.fetchone()
        return bool(held)
    try:
        with _file_lock(_lock_path()):
            return False
    except GCLocked:
        return True


@contextlib.contextmanager
def _advisory_lock(key: int = ADVISORY_KEY) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (acquired,) = cursor.fetchone()
    if not acquired:
        raise GCLocked("another garbage collection is running")
    try:
        yield
    finally:
        # A broken connection has released the lock with itself.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _lock_path(suffix: str = ".gc-lock") -> Path:
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        return Path(settings.DATA_DIR) / ("gc" + suffix.replace(".gc-", "."))
    return Path(name + suffix)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GCLocked("another garbage collection is running") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
