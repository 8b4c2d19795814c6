"""``harborpy audit purge``: progress per batch, a dry run, bad input, a busy log, then verify."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditEntry, AuditPurgeRun, PurgeStatus
from audit.services import Event, _append
from tests.fixtures.server import database_url

ROOT = Path(__file__).resolve().parents[2]


def harborpy(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=database_url())
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "harborpy.cli", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.django_db(transaction=True)
def test_the_purge_command() -> None:
    at = timezone.now() - timedelta(hours=30)
    _append([Event("alice", "pull" if i % 4 else "push", f"lib/a:{i}", at=at) for i in range(12)])

    dry = harborpy("purge", "--older-than-hours", "24", "--operations", "pull", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.strip().splitlines()[-1] == "would delete 9 entries"
    assert AuditEntry.objects.filter(action="pull").count() == 9

    for args, message in [
        (("--older-than-hours", "-1"), "0 to"),
        (("--older-than-hours", "1", "--operations", "pull,teleport"), "unknown 'teleport'"),
    ]:
        refused = harborpy("purge", *args)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
    missing = harborpy("purge")
    assert missing.returncode != 0 and "--older-than-hours" in missing.stderr

    busy_run = AuditPurgeRun.objects.create(retention_hour=1)  # pending
    busy = harborpy("purge", "--older-than-hours", "24")
    assert busy.returncode == 75 and "pending or running" in busy.stderr, busy.stderr
    busy_run.delete()

    done = harborpy("purge", "--older-than-hours", "24", "--operations", "pull")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("audit purge run ") and "pull" in lines[0]
    assert "batch: 9 entries deleted, 9 so far" in lines and lines[-1] == "deleted 9 entries"
    assert not AuditEntry.objects.filter(action="pull").exists()
    run = AuditPurgeRun.objects.get(dry_run=False)
    assert (run.status, run.actor, run.deleted) == (PurgeStatus.SUCCEEDED, "cli", 9)

    verified = harborpy("verify")
    assert verified.returncode == 0, verified.stderr
    assert "removed by recorded purges" in verified.stdout
    assert verified.stdout.startswith("audit log intact: ")

    # A deletion no purge records is still found by the command.
    AuditEntry.objects.filter(action="push").order_by("id")[1].delete()
    broken = harborpy("verify")
    assert broken.returncode == 1 and "no purge records that" in broken.stderr
