"""Writes of the REST API on repositories, artifacts and tags; each audited.

Blob bytes stay in the store: deleting here removes rows (manifests, tags,
blob links), and garbage collection reclaims unreferenced blobs later.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.services import Actor, audit_record

from ..exceptions import ManifestReferenced, ManifestUnknown, NameUnknown, TagExists
from ..grammar import check_tag
from ..immutability import immutable_check
from ..models import Manifest, Repository, Tag
from ..signals import deleted_artifacts, send_deleted, send_pushed

REFERRER_DEPTH = 8  # signatures of SBOMs of signatures...: deep enough, and bounded


def repository_delete(*, repository: Repository, actor: Actor) -> None:
    """Delete a repository with its manifests, tags, labels on them and blob links
    (TagImmutable, deleting nothing, if it holds an immutable tag)."""
    with transaction.atomic():
        locked = Repository.objects.select_for_update().filter(pk=repository.pk).first()
        if locked is None:
            raise NameUnknown(f"repository {repository.name!r} is gone already")
        immutable_check(
            repository=locked,
            names=Tag.objects.filter(repository=locked).values_list("name", flat=True),
            doing="delete the repository",
        )
        manifests = Manifest.objects.filter(repository=locked).count()
        tags = Tag.objects.filter(repository=locked).count()
        top = Manifest.objects.filter(repository=locked, parents__isnull=True, subject_digest="")
        send_deleted(repository_name=locked.name, artifacts=deleted_artifacts(manifests=top))
        # Tags first: they refer to manifests; the rest cascades from the repository row.
        Tag.objects.filter(repository=locked).delete()
        Manifest.objects.filter(repository=locked).delete()
        locked.delete()
        audit_record(
            actor=actor,
            action="delete",
            resource=repository.name,
            detail={"kind": "repository", "manifests": manifests, "tags": tags},
        )


def artifact_delete(*, manifest: Manifest, actor: Actor) -> list[str]:
    """Delete an artifact with its tags, its referrers (signatures, SBOMs) and the
    children of an index that nothing else holds (no tag, no other index).

    A child of an index cannot go alone (ManifestReferenced), nor an artifact
    any of whose deleted tags is immutable (TagImmutable).  Returns the
    digests deleted, the artifact's first.
    """
    repository = manifest.repository
    with transaction.atomic():
        locked = Manifest.objects.select_for_update().filter(pk=manifest.pk).first()
        if locked is None:
            raise ManifestUnknown("manifest unknown", detail={"digest": manifest.digest})
        parent = locked.parents.values_list("digest", flat=True).first()
        if parent is not None:
            raise ManifestReferenced(
                f"artifact is part of index {parent}; delete the index first",
                detail={"digest": locked.digest, "index": parent},
            )
        doomed = [locked.pk, *_referrer_ids(repository, [locked.digest])]
        doomed += _orphaned_children(doomed)
        immutable_check(
            repository=repository,
            names=Tag.objects.filter(manifest__in=doomed).values_list("name", flat=True),
            doing="delete the artifact",
        )
        digests = dict(Manifest.objects.filter(pk__in=doomed).values_list("pk", "digest"))
        deleted = deleted_artifacts(manifests=[locked])
        Manifest.objects.filter(pk__in=doomed).delete()
        send_deleted(repository_name=repository.name, artifacts=deleted)
        for pk in doomed:
            audit_record(
                actor=actor,
                action="delete",
                resource=f"{repository.name}@{digests[pk]}",
                detail={"kind": "manifest" if pk == locked.pk else "dependent"},
            )
    return [digests[pk] for pk in doomed]


def _referrer_ids(repository: Repository, subjects: list[str]) -> list[int]:
    found: list[int] = []
    for _ in range(REFERRER_DEPTH):
        rows = list(
            Manifest.objects.filter(repository=repository, subject_digest__in=subjects)
            .exclude(pk__in=found)
            .values_list("pk", "digest")
        )
        if not rows:
            break
        found += [pk for pk, _ in rows]
        subjects = [digest for _, digest in rows]
    return found


def _orphaned_children(parents: list[int]) -> list[int]:
    """Children of these indexes with no tag and no parent outside them."""
    candidates = Manifest.objects.filter(parents__in=parents).distinct()
    held = candidates.annotate(
        others=Count("parents", filter=~Q(parents__in=parents), distinct=True)
    ).filter(Q(others__gt=0) | Q(tags__isnull=False))
    return list(candidates.exclude(pk__in=held.values("pk")).values_list("pk", flat=True))


def tag_create(*, manifest: Manifest, name: str, actor: Actor) -> Tag:
    """Put a new tag on an existing artifact (TagExists if the repository has it already)."""
    check_tag(name)
    repository = manifest.repository
    with transaction.atomic():
        tag, created = Tag.objects.get_or_create(
            repository=repository,
            name=name,
            defaults={"manifest": manifest, "pushed_at": timezone.now()},
        )
        if not created:
            raise TagExists(f"tag {name!r} exists in {repository.name} already")
        send_pushed(repository_name=repository.name, tag=name, digest=manifest.digest)
        audit_record(
            actor=actor,
            action="push",
            resource=f"{repository.name}:{name}",
            detail={"kind": "tag", "digest": manifest.digest},
        )
    return tag


def tag_delete(*, manifest: Manifest, name: str, actor: Actor) -> None:
    """Remove tag ``name`` from this artifact (ManifestUnknown if it is not on it,
    TagImmutable if a rule protects it)."""
    repository = manifest.repository
    with transaction.atomic():
        found = (
            Tag.objects.select_for_update()
            .filter(repository=repository, manifest=manifest, name=name)
            .first()
        )
        if found is None:
            raise ManifestUnknown(
                f"artifact {manifest.digest} has no tag {name!r}", detail={"tag": name}, status=404
            )
        immutable_check(repository=repository, names=[name], doing="delete the tag")
        send_deleted(repository_name=repository.name, artifacts=deleted_artifacts(tags=[found]))
        found.delete()
        audit_record(
            actor=actor,
            action="delete",
            resource=f"{repository.name}:{name}",
            detail={"kind": "tag", "digest": manifest.digest},
        )
