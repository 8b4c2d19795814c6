"""Replication: registry endpoints, policies, and the executions and tasks that record runs."""

from __future__ import annotations

from typing import Any

from django.db import models

from jobs.models import Dispatched
from rbac.sealing import seal, unseal

PASSWORD_PURPOSE = "registry-password"


SEALED = "sealed:"  # how a password at rest begins (rbac.sealing); empty: none


class RegistryEndpoint(models.Model):
    """A remote OCI-distribution registry.

    ``password`` holds the password sealed (``set_password`` seals, ``secret`` opens):
    the database never holds it as given.  A plain text put in ``password`` directly is
    sealed when the row is saved.
    """

    name = models.CharField(max_length=128, unique=True)
    url = models.CharField(max_length=512)  # http(s)://host[:port]
    username = models.CharField(max_length=255, blank=True)
    password = models.TextField(blank=True)  # sealed: longer than the password given
    verify_tls = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.password and not self.password.startswith(SEALED):
            self.set_password(self.password)
        super().save(*args, **kwargs)

    def set_password(self, text: str) -> None:
        self.password = SEALED + seal(PASSWORD_PURPOSE, text) if text else ""

    @property
    def secret(self) -> str:
        """The password as given (an unsaved endpoint's, as it is)."""
        if self.password.startswith(SEALED):
            return unseal(PASSWORD_PURPOSE, self.password.removeprefix(SEALED))
        return self.password


class Direction(models.TextChoices):
    PUSH = "push", "push (local to remote)"
    PULL = "pull", "pull (remote to local)"


class Trigger(models.TextChoices):
    MANUAL = "manual"
    SCHEDULED = "scheduled"  # the policy's cron schedule, checked by Celery beat each minute
    EVENT_BASED = "event_based"  # on push and (with replicate_deletion) on delete, local source


class ReplicationPolicy(models.Model):
    name = models.CharField(max_length=128, unique=True)
    endpoint = models.ForeignKey(
        RegistryEndpoint, on_delete=models.PROTECT, related_name="policies"
    )
    direction = models.CharField(max_length=4, choices=Direction.choices)
    repository_filter = models.CharField(max_length=255, default="**")  # glob on the source name
    tag_filter = models.CharField(max_length=255, default="*")  # glob on tag names
    # A namespace (project) to put copied repositories under, replacing the source's first
    # path component; empty keeps the source name as it is.
    destination_namespace = models.CharField(max_length=255, blank=True)
    # Label names an artifact must all carry to be copied (push policies: local labels).
    label_filter = models.JSONField(default=list, blank=True)
    override = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=11, choices=Trigger.choices, default=Trigger.MANUAL)
    schedule = models.CharField(max_length=100, blank=True)  # cron, for scheduled triggers
    # The minute of the last scheduled run: claimed by one UPDATE, so a minute runs once.
    scheduled_at = models.DateTimeField(null=True, blank=True)
    # Deleting a tag or artifact at the source deletes it at the destination too.
    replicate_deletion = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "replication policies"

    def __str__(self) -> str:
        return self.name


class Status(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # tasks only: the destination keeps its own tag (override off)


class Execution(Dispatched):
    policy = models.ForeignKey(
        ReplicationPolicy, on_delete=models.CASCADE, related_name="executions"
    )
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=16, default="manual")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)  # what stopped the whole execution, if anything
    # Written by the running worker between tasks; a running execution whose heartbeat
    # is old lost its worker and is marked failed (stalled) so it can be run again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"execution {self.pk} of {self.policy_id}"


class Operation(models.TextChoices):
    COPY = "copy"
    DELETE = "delete"


class Task(models.Model):
    """One tag copied (its manifest, an index's children, all blobs), or one deletion."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="tasks")
    operation = models.CharField(max_length=6, choices=Operation.choices, default=Operation.COPY)
    source = models.CharField(max_length=512)  # repository:tag
    destination = models.CharField(max_length=512)
    digest = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    bytes = models.BigIntegerField(default=0)  # blob bytes actually transferred
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.source} -> {self.destination}"
