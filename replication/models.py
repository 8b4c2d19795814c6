"""Replication: registry endpoints, policies, and the executions and tasks that record runs."""

from __future__ import annotations

from django.db import models


class RegistryEndpoint(models.Model):
    """A remote OCI-distribution registry.  The password is kept in the database as given."""

    name = models.CharField(max_length=128, unique=True)
    url = models.CharField(max_length=512)  # http(s)://host[:port]
    username = models.CharField(max_length=255, blank=True)
    password = models.CharField(max_length=1024, blank=True)
    verify_tls = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Direction(models.TextChoices):
    PUSH = "push", "push (local to remote)"
    PULL = "pull", "pull (remote to local)"


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
    override = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
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


class Execution(models.Model):
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

    def __str__(self) -> str:
        return f"execution {self.pk} of {self.policy_id}"


class Task(models.Model):
    """One tag copied: its manifest (with an index's children) and all blobs."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="tasks")
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
