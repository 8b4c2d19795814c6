"""Signals the registry sends after a push or a delete is committed, for apps above it.

Replication listens (event-based policies, deletion replication); distribution
knows nothing of it.  The writing services call ``send_pushed`` and
``send_deleted`` inside their transaction: the signal goes out once the
transaction commits (never for a write that rolled back), through
``send_robust``, so a receiver that fails is logged and cannot break the write.
Writes that replication makes itself send nothing (no loops).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from .models import ArtifactLabel, Manifest, Tag

logger = logging.getLogger(__name__)

# A tag now names an artifact: kwargs repository_name, tag, digest.
artifact_pushed = Signal()
# Artifacts deleted or untagged: kwargs repository_name, artifacts (list of DeletedArtifact).
artifacts_deleted = Signal()
# A new manifest with a subject (a signature, an SBOM...) pushed by digest, so no tag
# announces it: kwargs repository_name, digest, subject_digest.
referrer_pushed = Signal()


@dataclass(frozen=True)
class DeletedArtifact:
    """An artifact that lost tags or was deleted, as it was just before."""

    digest: str
    tags: tuple[str, ...]  # the tags removed (every tag it had when the manifest went)
    gone: bool  # the manifest itself was deleted, not only tags
    labels: tuple[str, ...]  # the names of the labels it carried


def send_pushed(*, repository_name: str, tag: str, digest: str) -> None:
    """Send ``artifact_pushed`` when the current transaction commits."""
    transaction.on_commit(
        lambda: _send(artifact_pushed, repository_name=repository_name, tag=tag, digest=digest)
    )


def send_referrer_pushed(*, repository_name: str, digest: str, subject_digest: str) -> None:
    """Send ``referrer_pushed`` when the current transaction commits."""
    transaction.on_commit(
        lambda: _send(
            referrer_pushed,
            repository_name=repository_name,
            digest=digest,
            subject_digest=subject_digest,
        )
    )


def send_deleted(*, repository_name: str, artifacts: list[DeletedArtifact]) -> None:
    """Send ``artifacts_deleted`` when the current transaction commits (nothing for none)."""
    if artifacts:
        transaction.on_commit(
            lambda: _send(artifacts_deleted, repository_name=repository_name, artifacts=artifacts)
        )


def deleted_artifacts(
    *, manifests: Iterable[Manifest] = (), tags: Iterable[Tag] = ()
) -> list[DeletedArtifact]:
    """Describe what is about to go: whole ``manifests`` (with all their tags) and ``tags``
    removed from manifests that stay.  Call it before deleting: labels go with the rows.

    Referrers and the children of an index are left out: they go with what they belong to.
    """
    gone = {m.pk: m.digest for m in manifests if not m.subject_digest}
    # Children of an index go with it, referrers with their subject: only the top counts.
    for pk in Manifest.objects.filter(pk__in=list(gone), parents__isnull=False).values_list(
        "pk", flat=True
    ):
        gone.pop(pk, None)
    untagged: dict[int, list[str]] = {}
    for tag in tags:
        if tag.manifest_id not in gone:
            untagged.setdefault(tag.manifest_id, []).append(tag.name)
    ids = [*gone, *untagged]
    if not ids:
        return []
    labels: dict[int, list[str]] = {}
    for manifest_id, name in ArtifactLabel.objects.filter(manifest__in=ids).values_list(
        "manifest_id", "label__name"
    ):
        labels.setdefault(manifest_id, []).append(name)
    held: dict[int, list[str]] = {}
    for manifest_id, name in Tag.objects.filter(manifest__in=list(gone)).values_list(
        "manifest_id", "name"
    ):
        held.setdefault(manifest_id, []).append(name)
    digests = dict(Manifest.objects.filter(pk__in=list(untagged)).values_list("pk", "digest"))
    digests.update(gone)
    return [
        DeletedArtifact(
            digest=digests[pk],
            tags=tuple(sorted(held.get(pk, []) if pk in gone else untagged[pk])),
            gone=pk in gone,
            labels=tuple(sorted(labels.get(pk, []))),
        )
        for pk in ids
        if pk in digests
    ]


def _send(signal: Signal, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, Exception):
            logger.error("a receiver of a registry signal failed: %s", receiver, exc_info=result)
