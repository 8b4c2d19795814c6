"""Pull counts and pull times, counted in memory and written in batches.

A manifest GET is the registry's hottest request; a database write on each
would cost more than the read itself.  ``pull_record`` adds to a per-process
tally (a dict update under a lock) and a background thread writes the tally
about once a second: one statement for the repositories' ``pull_count``, one
for the manifests' ``pulled_at``, one for the tags', each its own transaction.
A crash loses at most the last second of counts, which is what a pull count is
worth.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter
from datetime import datetime

from django.db import close_old_connections
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from .models import Manifest, Repository, Tag

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FLUSH_BATCH = 1000  # distinct keys that wake the writer early
KEYS_MAX = 100_000  # past this many (a database outage), new keys are dropped


class _Tally:
    """Pulls since the last flush: counts per repository, last times per manifest and tag."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.manifests: dict[int, datetime] = {}
        self.tags: dict[tuple[int, str], datetime] = {}

    def __len__(self) -> int:
        return len(self.counts) + len(self.manifests) + len(self.tags)

    def merge(self, other: _Tally) -> None:
        self.counts.update(other.counts)
        for key, at in other.manifests.items():
            self.manifests[key] = max(at, self.manifests.get(key, at))
        for tag_key, at in other.tags.items():
            self.tags[tag_key] = max(at, self.tags.get(tag_key, at))


class _PullCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._tally = _Tally()
        self._owner = 0  # pid that started the thread: a forked worker starts its own

    def add(self, repository_id: int, manifest_id: int, tag: str | None) -> None:
        now = timezone.now()
        with self._lock:
            if self._owner != os.getpid():
                self._owner = os.getpid()
                self._tally = _Tally()
                threading.Thread(target=self._run, name="pull-counts", daemon=True).start()
                atexit.register(self.flush)
            tally = self._tally
            if len(tally) >= KEYS_MAX:
                return
            tally.counts[repository_id] += 1
            tally.manifests[manifest_id] = now
            if tag is not None:
                tally.tags[(repository_id, tag)] = now
            if len(tally) >= FLUSH_BATCH:
                self._wake.set()

    def flush(self) -> None:
        with self._lock:
            tally, self._tally = self._tally, _Tally()
        if not len(tally):
            return
        try:
            failed = _write(tally)
        finally:
            close_old_connections()
        if len(failed):
            with self._lock:  # keep them for the next try
                self._tally.merge(failed)

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()


def _write(tally: _Tally) -> _Tally:
    """Three statements, whatever the number of repositories, manifests and tags pulled.

    Each commits on its own: a writer that holds one table's lock at a time cannot
    deadlock with anything that locks several (a TRUNCATE of the test database), and
    a part that fails is kept for the next flush without the others being counted twice.
    Returns what could not be written.
    """
    failed = _Tally()
    for part, write in (
        ("counts", _add_counts),
        ("manifests", _set_manifest_times),
        ("tags", _set_tag_times),
    ):
        if not getattr(tally, part):
            continue
        try:
            write(tally)
        except Exception:
            logger.exception("could not write pull %s", part)
            setattr(failed, part, getattr(tally, part))
    return failed


def _add_counts(tally: _Tally) -> None:
    added = Case(*(When(pk=pk, then=Value(n)) for pk, n in tally.counts.items()), default=Value(0))
    Repository.objects.filter(pk__in=list(tally.counts)).update(pull_count=F("pull_count") + added)


def _set_manifest_times(tally: _Tally) -> None:
    Manifest.objects.filter(pk__in=list(tally.manifests)).update(
        pulled_at=Case(*(When(pk=pk, then=Value(at)) for pk, at in tally.manifests.items()))
    )


def _set_tag_times(tally: _Tally) -> None:
    which = Q()
    times = []
    for (repository_id, name), at in tally.tags.items():
        key = Q(repository_id=repository_id, name=name)
        which |= key
        times.append(When(key, then=Value(at)))
    Tag.objects.filter(which).update(pulled_at=Case(*times))


_counter = _PullCounter()


def pull_record(*, repository_id: int, manifest_id: int, tag: str | None) -> None:
    """Count one manifest pull (by ``tag``, or by digest when None); written within a second."""
    _counter.add(repository_id, manifest_id, tag)


def pulls_flush() -> None:
    """Write every pull counted so far now (tests, shutdown)."""
    _counter.flush()
