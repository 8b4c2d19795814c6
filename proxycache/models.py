"""What a proxy cache still has to fetch.

A cached manifest is stored before its blobs, and an index before its child
manifests: they come from the upstream when a client first asks for them (a
client pulls one platform of a multi-arch image, and registries with pull
limits count every manifest fetched).  Until then the manifest cannot refer to
them (a reference needs stored content), so each one waits here, and is
attached when it arrives, which is what keeps it from garbage collection.
"""

from __future__ import annotations

from django.db import models

from distribution.models import Manifest


class AbsentBlob(models.Model):
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="absent_blobs")
    digest = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["manifest", "digest"], name="absent_blob_once")
        ]
        indexes = [models.Index(fields=["digest"])]

    def __str__(self) -> str:
        return f"{self.digest} of manifest {self.manifest_id}"


class AbsentChild(models.Model):
    """A child manifest of a cached index, not fetched yet."""

    index = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="absent_children")
    digest = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["index", "digest"], name="absent_child_once")
        ]
        indexes = [models.Index(fields=["digest"])]

    def __str__(self) -> str:
        return f"{self.digest} of index {self.index_id}"
