"""The per-test flush survives a deadlock with a live server's late transaction.

A server under test may still be committing after a test's last response (a proxy
cache fill, the pull counters).  Here a second connection plays that server: it holds
one table, waits until the flush's TRUNCATE holds another and asks for that one too,
so PostgreSQL must abort one side: the flush, which waited first.  The suite's flush
(tests/fixtures/server.py) tries again and empties the database all the same.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test import TransactionTestCase

from audit.models import AuditHead

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_flush_that_deadlocks_with_a_late_writer_is_retried() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE and table locks are PostgreSQL's")
    import psycopg2

    settings = connection.settings_dict
    params = {
        "dbname": settings["NAME"],
        "host": settings.get("HOST") or "127.0.0.1",
        "port": settings.get("PORT") or 5432,
        "user": settings.get("USER") or "postgres",
    }
    AuditHead.objects.create()
    holding = threading.Event()
    outcome: list[str] = []

    def late_writer() -> None:
        writer = psycopg2.connect(**params)
        watcher = psycopg2.connect(**params)
        watcher.autocommit = True
        try:
            cursor = writer.cursor()
            cursor.execute("LOCK TABLE audit_audithead IN ROW EXCLUSIVE MODE")
            holding.set()
            held = None
            deadline = time.monotonic() + 20
            while held is None and time.monotonic() < deadline:
                with watcher.cursor() as look:
                    look.execute(
                        "SELECT relation::regclass::text FROM pg_locks"
                        " WHERE pid NOT IN (%s, %s) AND mode = 'AccessExclusiveLock'"
                        " AND granted AND relation IS NOT NULL"
                        " AND database = (SELECT oid FROM pg_database"
                        "                 WHERE datname = current_database())"
                        " AND relation::regclass::text NOT LIKE '%%_seq' LIMIT 1",
                        (writer.get_backend_pid(), watcher.get_backend_pid()),
                    )
                    row = look.fetchone()
                held = row[0] if row else None
                time.sleep(0.02)
            if held is None:
                outcome.append("the flush never started")
                return
            try:
                cursor.execute(f'LOCK TABLE "{held}" IN ROW EXCLUSIVE MODE')
                outcome.append("flush aborted")
            except psycopg2.errors.DeadlockDetected:
                outcome.append("writer aborted")
            writer.rollback()
        finally:
            writer.close()
            watcher.close()

    thread = threading.Thread(target=late_writer, name="late-writer", daemon=True)
    thread.start()
    assert holding.wait(10)
    case = TransactionTestCase()
    case.databases = {"default"}  # type: ignore[assignment]
    case._fixture_teardown()  # type: ignore[attr-defined]  # the suite's flush, retried
    thread.join(30)
    assert outcome == ["flush aborted"]  # the deadlock happened, and the flush was its victim
    assert not AuditHead.objects.exists()  # and yet it emptied the database
