"""The audit log: who did what, when and from where, as a hash chain; and its rotation.

Each entry carries the hash of the entry before it and a hash of itself over
both, so changing, removing or reordering an entry breaks every link after it;
``harborpy audit verify`` finds the first broken one.  The chain's head (the
last hash) lives on one row that appenders lock, so entries are chained in
exactly the order they are stored.

Rotation (audit.rotation, audit.purge) removes old entries; where they were,
an ``AuditGap`` row lets the check cross, and the chained ``purge`` entry each
batch appends vouches for the gap rows, so a purge stays verifiable and a
deletion without one does not.
"""

from __future__ import annotations

from django.db import models

from jobs.models import Dispatched

GENESIS = "0" * 64


class AuditEntry(models.Model):
    """One recorded operation."""

    at = models.DateTimeField()
    actor = models.CharField(max_length=255)  # a user or robot name, or "anonymous"
    source = models.CharField(max_length=64, blank=True)  # the client's address
    action = models.CharField(max_length=32)  # push, pull, delete, login, permission, ...
    resource = models.CharField(max_length=512)  # e.g. library/app:1 or library/app@sha256:...
    detail = models.JSONField(default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        indexes = [
            models.Index(fields=["action", "at"], name="audit_action_at"),
            models.Index(fields=["resource"], name="audit_resource"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.resource}"


class AuditHead(models.Model):
    """The single row holding the hash of the newest entry; locked while appending."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    hash = models.CharField(max_length=64, default=GENESIS)

    def __str__(self) -> str:
        return self.hash


# The actions services record (``audit_record(action=...)``): what a purge may be limited to.
# tests/audit/test_purge.py checks every action the code records is listed.
ACTIONS = (
    "create",
    "delete",
    "gc",
    "group",
    "immutable_rule",
    "label",
    "login",
    "permission",
    "project",
    "pull",
    "purge",
    "push",
    "replicate",
    "retention",
    "setting",
    "stop",
    "update",
    "user",
)
PURGE_ACTION = "purge"
PURGE_RESOURCE = "system:audit-log"  # the purge batches' entries: they document the gaps


class AuditGap(models.Model):
    """Entries a recorded purge removed from between two kept ones, for ``audit_verify``.

    The kept entry after the gap names, as its ``previous_hash``, the last entry
    removed (``hash_after``); the walk crosses from the kept entry before it
    (``hash_before``, GENESIS at the start) only through a row like this one.
    The whole table is summed up, as ``gaps_digest``, in the newest chained
    ``purge`` entry, so a gap row added, edited or removed is found too.
    """

    hash_before = models.CharField(max_length=64, unique=True)
    hash_after = models.CharField(max_length=64, unique=True)
    first_id = models.BigIntegerField()  # the removed entries' ids lay within first_id..last_id
    last_id = models.BigIntegerField()
    count = models.BigIntegerField()  # how many entries were removed there

    def __str__(self) -> str:
        return f"gap of {self.count} entries, #{self.first_id}..#{self.last_id}"


class PurgeStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class AuditPurgeRun(Dispatched):
    """One log rotation: entries older than ``retention_hour`` (of ``operations``; none: all).

    ``pending`` rows wait for a worker (``audit.purge_run``), which claims them
    with one conditional UPDATE; ``deleted`` counts the entries removed, or for
    a dry run those that would be.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # each batch: a live worker
    status = models.CharField(
        max_length=9, choices=PurgeStatus.choices, default=PurgeStatus.PENDING
    )
    dry_run = models.BooleanField(default=False)
    retention_hour = models.IntegerField()
    operations = models.JSONField(default=list, blank=True)  # action names; empty: every action
    cutoff = models.DateTimeField(null=True, blank=True)  # entries before it go: fixed at start
    deleted = models.BigIntegerField(default=0)
    log = models.TextField(blank=True)
    trigger = models.CharField(max_length=16, default="manual", help_text="manual or schedule")
    actor = models.CharField(max_length=255, default="system")
    actor_source = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit purge {self.pk} ({self.status})"


class AuditPurgeSchedule(models.Model):
    """The periodic log rotation an admin set (one row, pk 1), and the minute last claimed.

    ``cron`` empty: no periodic rotation.  ``kind`` is Harbor's schedule type, for display.
    """

    kind = models.CharField(max_length=8, default="None")
    cron = models.CharField(max_length=100, blank=True)
    retention_hour = models.IntegerField(null=True, blank=True)
    operations = models.JSONField(default=list, blank=True)
    dry_run = models.BooleanField(default=False)
    set_at = models.DateTimeField(null=True, blank=True)
    set_by = models.CharField(max_length=255, blank=True)
    # The minute of the last scheduled run: claimed by one UPDATE, so a minute runs once.
    scheduled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"audit purge schedule {self.cron or 'none'}"
