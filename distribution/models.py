"""Registry metadata: repositories, blobs and their links, manifests, tags, uploads.

Blob bytes live in the blob store under their digest, once; which repository
may see a blob is a ``RepositoryBlob`` row.  Manifests are small documents
kept whole in the database, returned byte for byte.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

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


class Blob(models.Model):
    """A content-addressed blob in the store; one row per digest, whatever links to it."""

    digest = models.CharField(max_length=DIGEST_MAX, unique=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"upload {self.id} to {self.repository_name}"
