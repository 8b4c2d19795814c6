"""Appending to the audit log.

``audit_record`` appends at once, inside the caller's transaction: a push and
its entry are stored together or not at all.  ``audit_pull`` queues the entry
and a background thread appends queued pulls in batches about once a second,
so a pull costs a list append, not a locked transaction; a crash can lose at
most the last second of pull entries, never a push or a delete.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from .models import GENESIS, AuditEntry, AuditHead

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FLUSH_BATCH = 500
PENDING_MAX = 100_000  # past this many queued pulls (a database outage), the oldest go


@dataclass(frozen=True)
class Actor:
    """Who does something, and from where: recorded with every entry."""

    name: str
    source: str = ""


SYSTEM = Actor("system")


@dataclass(frozen=True)
class Event:
    actor: str
    action: str
    resource: str
    source: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=timezone.now)


def entry_hash(previous_hash: str, event: Event | AuditEntry) -> str:
    """The hash of an entry: over the previous hash and every recorded field."""
    at = event.at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [previous_hash, at, event.actor, event.source, event.action, event.resource]
    canonical = json.dumps(
        [*fields, event.detail], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def audit_record(
    *, actor: Actor, action: str, resource: str, detail: dict[str, Any] | None = None
) -> None:
    """Append one entry now, within the caller's transaction if there is one."""
    _append([Event(actor.name, action, resource, actor.source, detail or {})])


def audit_pull(*, actor: Actor, resource: str, detail: dict[str, Any] | None = None) -> None:
    """Queue a pull entry; it reaches the log within about a second."""
    _pulls.add(Event(actor.name, "pull", resource, actor.source, detail or {}))


def audit_flush() -> None:
    """Append every queued pull entry now."""
    _pulls.flush()


def _append(events: list[Event], *, background: bool = False) -> None:
    # The head row is locked for the whole append, so entries are chained (and get
    # their ids) in one order, whoever appends at the same time.
    with transaction.atomic():
        head = chain_lock(table_first=background)
        entries = chain_events(head.hash, events)
        AuditEntry.objects.bulk_create(entries)
        head.hash = entries[-1].hash if entries else head.hash
        head.save(update_fields=["hash"])


def chain_lock(*, table_first: bool = False) -> AuditHead:
    """Lock the chain's head row (created at GENESIS if missing) for the caller's transaction.

    Whoever holds it is the only one appending to (or purging) the chain.
    """
    if table_first and connection.vendor == "postgresql":
        # The entry table first, then the head: the order a TRUNCATE of both (a
        # database flush) takes them in, so the two wait for each other, never deadlock.
        # (Appends inside a request finish before anything else can flush.)
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(AuditEntry._meta.db_table)
            cursor.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
    head = AuditHead.objects.select_for_update().filter(id=1).first()
    if head is None:
        AuditHead.objects.get_or_create(id=1, defaults={"hash": GENESIS})
        head = AuditHead.objects.select_for_update().get(id=1)
    return head


def chain_events(previous: str, events: list[Event]) -> list[AuditEntry]:
    """Unsaved entries for ``events``, each linked to the one before, the first to ``previous``."""
    entries = []
    for event in events:
        digest = entry_hash(previous, event)
        entries.append(
            AuditEntry(
                at=event.at,
                actor=event.actor,
                source=event.source,
                action=event.action,
                resource=event.resource,
                detail=event.detail,
                previous_hash=previous,
                hash=digest,
            )
        )
        previous = digest
    return entries


class _PullQueue:
    """Pull entries waiting to be appended, with the thread that appends them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[Event] = []
        self._owner = 0  # pid that started the thread: a forked worker starts its own

    def add(self, event: Event) -> None:
        with self._lock:
            if self._owner != os.getpid():
                self._owner = os.getpid()
                self._pending = []
                threading.Thread(target=self._run, name="audit-pulls", daemon=True).start()
                atexit.register(self.flush)
            self._pending.append(event)
            if len(self._pending) > PENDING_MAX:
                del self._pending[: len(self._pending) - PENDING_MAX]
            if len(self._pending) >= FLUSH_BATCH:
                self._wake.set()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            _append(batch, background=True)
        except Exception:
            logger.exception("could not append %d pull entries to the audit log", len(batch))
            with self._lock:  # keep them for the next try
                self._pending[:0] = batch
        finally:
            close_old_connections()

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()


_pulls = _PullQueue()
