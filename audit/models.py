"""The audit log: who did what, when and from where, as a hash chain.

Each entry carries the hash of the entry before it and a hash of itself over
both, so changing, removing or reordering an entry breaks every link after it;
``harborpy audit verify`` finds the first broken one.  The chain's head (the
last hash) lives on one row that appenders lock, so entries are chained in
exactly the order they are stored.
"""

from __future__ import annotations

from django.db import models

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
