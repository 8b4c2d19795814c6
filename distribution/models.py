"""Registry metadata: repositories, blobs and their links, manifests, tags, uploads.

Blob bytes live in the blob store under their digest, once; which repository
may see a blob is a ``RepositoryBlob`` row.  Manifests are small documents
kept whole in the database, returned byte for byte.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models import Dispatched

DIGEST_MAX = 135  # "sha512:" + 128 hex digits


class Repository(models.Model):
    """A named collection of manifests and tags, created by its first push.

    It belongs to the project its name starts with: ``library/app`` is in ``library``.
    """

    name = models.CharField(max_length=255, unique=True)
    project = models.ForeignKey(
        "projects.Project", on_delete=models.PROTECT, related_name="repositories"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Manifest GETs, counted in memory and added in batches (distribution.pulls).
    pull_count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class BlobState(models.TextChoices):
    """Where a blob is in garbage collection (docs/gc.md).

    ``marked``: a running GC found it unreferenced and untouched for the grace
    window; any push that uses it brings it back to ``active``.  ``deleting``:
    the GC has decided, its bytes are going; pushes treat it as missing.
    """

    ACTIVE = "active"
    MARKED = "marked"
    DELETING = "deleting"


class Blob(models.Model):
    """A content-addressed blob in the store; one row per digest, whatever links to it.

    ``touched_at`` is the last time a push used it (upload, mount, HEAD,
    manifest put); garbage collection spares blobs touched within its grace window.
    """

    digest = models.CharField(max_length=DIGEST_MAX, unique=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=8, choices=BlobState.choices, default=BlobState.ACTIVE)
    touched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["state", "id"], name="blob_state")]

    def __str__(self) -> str:
        return self.digest


class RepositoryBlob(models.Model):
    """A repository's right to see a blob (uploaded, mounted or referred to there)."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_links")
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "blob"], name="uniq_repository_blob")
        ]

    def __str__(self) -> str:
        return f"{self.repository_id} -> {self.blob_id}"


class Manifest(models.Model):
    """An image manifest, index or artifact manifest stored in one repository."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="manifests")
    digest = models.CharField(max_length=DIGEST_MAX)
    media_type = models.CharField(max_length=255)
    # artifactType, or the config media type of an image manifest (what referrers report)
    artifact_type = models.CharField(max_length=255, blank=True)
    size = models.IntegerField()
    body = models.BinaryField()
    subject_digest = models.CharField(max_length=DIGEST_MAX, blank=True)
    annotations = models.JSONField(null=True, blank=True)
    # architecture, os, created... from the image config, read once at push (null: never read)
    extra_attrs = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    pushed_at = models.DateTimeField(default=timezone.now)  # the last push of these bytes
    pulled_at = models.DateTimeField(null=True, blank=True)  # batched, see distribution.pulls
    blobs = models.ManyToManyField(Blob, related_name="manifests", blank=True)
    children = models.ManyToManyField("self", symmetrical=False, related_name="parents", blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="uniq_manifest_digest")
        ]
        indexes = [
            models.Index(fields=["repository", "subject_digest"], name="manifest_subject"),
            # the REST API's artifact pages: newest push first within a repository
            models.Index(fields=["repository", "-pushed_at", "-id"], name="manifest_pushed"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}@{self.digest}"


class Tag(models.Model):
    """A mutable name for one manifest of a repository."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="tags")
    updated_at = models.DateTimeField(auto_now=True)
    pushed_at = models.DateTimeField(default=timezone.now)  # when it was set on its manifest
    pulled_at = models.DateTimeField(null=True, blank=True)  # batched, see distribution.pulls

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="uniq_tag")]

    def __str__(self) -> str:
        return f"{self.repository.name}:{self.name}"


class Label(models.Model):
    """A label artifacts can carry: global (any project's artifacts) or of one project."""

    GLOBAL, PROJECT = "g", "p"
    SCOPES = ((GLOBAL, "global"), (PROJECT, "project"))

    name = models.CharField(max_length=128)
    color = models.CharField(max_length=16, blank=True)
    description = models.TextField(blank=True)
    scope = models.CharField(max_length=1, choices=SCOPES)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="labels"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(project__isnull=True), name="uniq_global_label"
            ),
            models.UniqueConstraint(
                fields=["project", "name"],
                condition=Q(project__isnull=False),
                name="uniq_project_label",
            ),
            models.CheckConstraint(
                condition=Q(scope="g", project__isnull=True) | Q(scope="p", project__isnull=False),
                name="label_scope_project",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ArtifactLabel(models.Model):
    """A label on a manifest (an artifact); gone with either."""

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="label_links")
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="artifact_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["manifest", "label"], name="uniq_artifact_label")
        ]

    def __str__(self) -> str:
        return f"{self.label_id} on {self.manifest_id}"


class Upload(models.Model):
    """A blob upload session; its bytes are in the blob store under its id.

    The row is the truth any web node reads: ``size`` is how many bytes are
    stored, ``digest`` the hash of those bytes when the node that wrote them
    could compute it (empty when a commit must rehash), ``busy_since`` and
    ``claim`` mark the one request writing to it right now.
    """

    id = models.CharField(primary_key=True, max_length=36)
    repository_name = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    digest = models.CharField(max_length=DIGEST_MAX, blank=True)
    busy_since = models.DateTimeField(null=True, blank=True)
    # Token of the request that holds busy_since; its writes count only while it holds it.
    claim = models.CharField(max_length=36, blank=True)
    # The digest a completion is committing right now: garbage collection keeps that blob.
    committing = models.CharField(max_length=DIGEST_MAX, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"upload {self.id} to {self.repository_name}"


class GCStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class GCRun(Dispatched):
    """One garbage collection: what it was asked to do, what it freed, and its log.

    ``pending`` rows wait for a worker (``distribution.gc_run``); the counters
    say what was deleted, or for a dry run what would be.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=9, choices=GCStatus.choices, default=GCStatus.PENDING)
    dry_run = models.BooleanField(default=False)
    untagged = models.BooleanField(default=False)
    grace = models.IntegerField(help_text="seconds")
    blobs_deleted = models.IntegerField(default=0)
    bytes_freed = models.BigIntegerField(default=0)
    manifests_deleted = models.IntegerField(default=0)
    uploads_deleted = models.IntegerField(default=0)
    log = models.TextField(blank=True)
    trigger = models.CharField(max_length=16, default="manual", help_text="manual or schedule")

    def __str__(self) -> str:
        return f"gc run {self.pk} ({self.status})"


class GCSchedule(models.Model):
    """The periodic garbage collection an admin set (one row, pk 1), and the minute last claimed.

    ``set_at`` empty: no admin has set one, and ``HARBORPY_GC_SCHEDULE`` is
    the schedule (the row then only holds ``scheduled_at``).  ``cron`` empty:
    no periodic collection.  ``kind`` is Harbor's schedule type, for display.
    """

    kind = models.CharField(max_length=8, default="None")
    cron = models.CharField(max_length=100, blank=True)
    untagged = models.BooleanField(default=False)
    grace = models.IntegerField(null=True, blank=True, help_text="seconds; empty: the setting")
    set_at = models.DateTimeField(null=True, blank=True)
    set_by = models.CharField(max_length=255, blank=True)
    # The minute of the last scheduled run: claimed by one UPDATE, so a minute runs once.
    scheduled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"gc schedule {self.cron or 'none'}"


class ImmutableRule(models.Model):
    """Tags of a project that cannot be moved or deleted while the rule is enabled.

    Both patterns are doublestar globs (``distribution.patterns``); the
    repository pattern matches the name without the project (``app`` in
    ``library/app``), as Harbor's do.
    """

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="immutable_rules"
    )
    repository_pattern = models.CharField(max_length=255, default="**")
    tag_pattern = models.CharField(max_length=255)
    disabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"immutable {self.repository_pattern}:{self.tag_pattern}"


class RetentionPolicy(models.Model):
    """A project's tag retention rules (docs/retention.md) and when they run.

    ``rules`` is a list of ``{"repository": glob, "tag": glob, <action>: N}``
    with one action of ``RETENTION_ACTIONS``; an artifact stays, with all its tags, if any
    rule keeps it.
    """

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="retention_policy"
    )
    rules = models.JSONField(default=list)
    schedule = models.CharField(max_length=100, blank=True, help_text="cron; empty: manual only")
    # The minute of the last scheduled run: claimed by one UPDATE, so a minute runs once.
    scheduled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"retention of project {self.project_id}"


class RetentionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RetentionRun(Dispatched):
    """One application of a retention policy: what it kept and deleted (or would, dry).

    ``pending`` rows wait for a worker (``distribution.retention_run``); the
    actor is who started it, for the audit entries of what it deletes.
    """

    policy = models.ForeignKey(RetentionPolicy, on_delete=models.CASCADE, related_name="runs")
    # When it was recorded, until a worker claims it; then when it started.
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=9, choices=RetentionStatus.choices, default=RetentionStatus.PENDING
    )
    dry_run = models.BooleanField(default=False)
    trigger = models.CharField(max_length=16, default="manual")
    retained = models.IntegerField(default=0, help_text="tags kept")
    deleted = models.IntegerField(default=0, help_text="tags deleted")
    manifests_deleted = models.IntegerField(default=0)
    log = models.TextField(blank=True)
    actor = models.CharField(max_length=255, default="system")
    actor_source = models.CharField(max_length=255, blank=True)
    # Written when the run starts and after each repository; a running run whose heartbeat
    # is old lost its worker and is marked failed (retention.retention_fail_stalled).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"retention run {self.pk} ({self.status})"
