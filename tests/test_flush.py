"""The per-test flush survives a deadlock with a live server's late transaction.

A server under test may still be committing after a test's last response (a proxy
cache fill, the pull counters).  Here a second connection plays that server: it holds
one table, waits until the flush's TRUNCATE holds another and asks for that one too,
so PostgreSQL must abort one side; the suite's flush retries (tests/fixtures/server.py).
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from django.db import connection

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

    def late_writer() -> None:
        writer = psycopg2.connect(**params)
        watcher = psycopg2.connect(**params)
        watcher.autocommit = True
        try:
            cursor = writer.cursor()
            cursor.execute("LOCK TABLE audit_audithead IN ROW EXCLUSIVE MODE")
            held = None
            deadline = time.monotonic() + 20
            while held is None and time.monotonic() < deadline:
                with watcher.cursor() as look:
                    look.execute(
                        "SELECT relation::regclass::text FROM pg_locks WHERE pid NOT IN (%s, %s)"
                        " AND mode = 'AccessExclusiveLock' AND granted AND relation IS NOT NULL"
                        " AND relation::regclass::text NOT LIKE '%%_seq' LIMIT 1",
                        (writer.get_backend_pid(), watcher.get_backend_pid()),
                    )
                    row = look.fetchone()
                held = row[0] if row else None
                time.sleep(0.05)
            assert held is not None, "the flush never started"
            # One side is aborted: usually the flush, which waited first and is retried.
            with contextlib.suppress(psycopg2.errors.DeadlockDetected):
                cursor.execute(f'LOCK TABLE "{held}" IN ROW EXCLUSIVE MODE')
            writer.rollback()
        finally:
            writer.close()
            watcher.close()

    # Started now, it waits past the test's end for the flush.
    threading.Thread(target=late_writer, name="late-writer", daemon=True).start()
    time.sleep(0.2)
