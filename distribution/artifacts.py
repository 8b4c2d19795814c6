"""Reads behind the REST API's repositories, artifacts, tags and labels.

An *artifact* is a manifest seen with everything around it: its tags, labels,
size with its blobs (and its children's, for an index), the platforms of an
index, its referrers (signatures, SBOMs).  ``artifacts_describe`` loads all of
that for a page of manifests in a fixed number of queries, whatever the page
size.  The list hides what a person would not look for on its own: untagged
children of an index and untagged referrers; they show inside their index or
subject instead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Greatest

from projects.models import Project

from .exceptions import ManifestUnknown, NameUnknown
from .grammar import check_digest, check_name, check_tag, is_digest
from .manifests import INDEX_TYPES
from .models import ArtifactLabel, Label, Manifest, Repository, Tag

# Harbor's artifact types, by artifactType or config media type.
KINDS = {
    "application/vnd.docker.container.image.v1+json": "IMAGE",
    "application/vnd.oci.image.config.v1+json": "IMAGE",
    "application/vnd.cncf.helm.config.v1+json": "CHART",
    "application/vnd.cnab.manifest.v1": "CNAB",
    "application/vnd.wasm.config.v1+json": "WASM",
    "application/vnd.goharbor.harbor.sbom.v1": "SBOM",
    "application/spdx+json": "SBOM",
    "application/vnd.cyclonedx+json": "SBOM",
    "application/vnd.dev.cosign.artifact.sig.v1+json": "SIGNATURE",
    "application/vnd.cncf.notary.signature": "SIGNATURE",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "SIGNATURE",
}
# What a referrer is to its subject (Harbor's accessory types).
ACCESSORY_KINDS = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature.cosign",
    "application/vnd.cncf.notary.signature": "signature.notation",
    "application/vnd.goharbor.harbor.sbom.v1": "harbor.sbom",
    "application/spdx+json": "sbom.spdx",
    "application/vnd.cyclonedx+json": "sbom.cyclonedx",
    "application/vnd.in-toto+json": "build.attestation",
}


def artifact_kind(manifest: Manifest) -> str:
    if manifest.artifact_type in KINDS:
        return KINDS[manifest.artifact_type]
    if manifest.media_type in INDEX_TYPES:
        return "IMAGE"
    return "UNKNOWN"


def accessory_kind(manifest: Manifest) -> str:
    return ACCESSORY_KINDS.get(manifest.artifact_type, "subject.accessory")


# --- repositories ----------------------------------------------------------------------------


def _listed(manifests: QuerySet[Manifest], repository: Repository | None = None) -> QuerySet:
    """What an artifact list shows: tagged manifests, and untagged ones that are
    neither a child of an index nor a referrer.

    For one repository the tests are uncorrelated subqueries, which PostgreSQL runs
    once and probes as hash tables (a count over 10,000 artifacts then costs about a
    third of the per-row EXISTS lookups); across repositories they are correlated.
    """
    Through = Manifest.children.through
    if repository is not None:
        tagged = Q(pk__in=Tag.objects.filter(repository=repository).values("manifest_id"))
        children = Through.objects.filter(from_manifest__repository=repository)
        child = Q(pk__in=children.values("to_manifest_id"))
    else:
        tagged = Q(Exists(Tag.objects.filter(manifest=OuterRef("pk"))))
        child = Q(Exists(Through.objects.filter(to_manifest=OuterRef("pk"))))
    return manifests.filter(tagged | (Q(subject_digest="") & ~child))


def repositories_of(project: Project) -> QuerySet[Repository]:
    """A project's repositories with ``artifact_count`` and ``update_time``, by name."""
    counted = (
        _listed(Manifest.objects.filter(repository=OuterRef("pk")))
        .order_by()
        .values("repository")
        .annotate(n=Count("pk"))
        .values("n")
    )
    latest = (
        Manifest.objects.filter(repository=OuterRef("pk"))
        .order_by("-pushed_at")
        .values("pushed_at")[:1]
    )
    return (
        Repository.objects.filter(project=project)
        .annotate(
            artifact_count=Coalesce(Subquery(counted), 0),
            update_time=Greatest(F("created_at"), Coalesce(Subquery(latest), F("created_at"))),
        )
        .order_by("name")
    )


def repository_get(*, project: Project, name: str) -> Repository:
    """Repository ``name`` (without the project's prefix) of ``project``, or NameUnknown.

    Without the counts of ``repositories_of``: ask that for them.
    """
    full = f"{project.name}/{name}"
    check_name(full)
    repository = Repository.objects.filter(project=project, name=full).first()
    if repository is None:
        raise NameUnknown(f"repository {full!r} not found", detail={"name": full})
    return repository


# --- artifacts -------------------------------------------------------------------------------


def artifacts_of(repository: Repository) -> QuerySet[Manifest]:
    """The artifacts a list shows, newest push first (index ``manifest_pushed``)."""
    manifests = Manifest.objects.filter(repository=repository).defer("body")
    return _listed(manifests, repository).order_by("-pushed_at", "-id")


def artifacts_filter(
    artifacts: QuerySet[Manifest], *, key: str, value: str, fuzzy: bool
) -> QuerySet[Manifest]:
    """One filter term: ``tags`` (a name, ``*`` any, ``nil`` none), ``media_type``,
    ``digest``, ``labels`` (``(1 2)`` all of, ``{1 2}`` any of, or one id)."""
    if key == "tags":
        tags = Tag.objects.filter(manifest=OuterRef("pk"))
        if value == "*":
            return artifacts.filter(Exists(tags))
        if value == "nil":
            return artifacts.filter(~Exists(tags))
        lookup = {"name__icontains": value} if fuzzy else {"name": value}
        return artifacts.filter(Exists(tags.filter(**lookup)))
    if key == "media_type":
        if fuzzy:
            return artifacts.filter(
                Q(media_type__icontains=value) | Q(artifact_type__icontains=value)
            )
        return artifacts.filter(Q(media_type=value) | Q(artifact_type=value))
    if key == "digest":
        return artifacts.filter(digest=value)
    if key == "labels":
        ids = label_ids(value)
        links = ArtifactLabel.objects.filter(manifest=OuterRef("pk"))
        if value.startswith("{"):
            return artifacts.filter(Exists(links.filter(label_id__in=ids)))
        for label_id in ids:
            artifacts = artifacts.filter(Exists(links.filter(label_id=label_id)))
        return artifacts
    raise ValueError(f"no artifact filter {key!r}")


def label_ids(value: str) -> list[int]:
    """``(1 2)``, ``{1 2}`` or ``1`` as label ids; ValueError when they are not numbers."""
    return [int(part) for part in value.strip("(){} ").split()]


def artifact_get(*, repository: Repository, reference: str) -> Manifest:
    """The manifest a digest or tag names in the repository, or ManifestUnknown."""
    manifests = Manifest.objects.filter(repository=repository).select_related("repository")
    if is_digest(reference):
        manifest = manifests.filter(digest=check_digest(reference)).first()
    else:
        manifest = manifests.filter(tags__name=check_tag(reference)).first()
    if manifest is None:
        raise ManifestUnknown(
            f"artifact {reference!r} not found in {repository.name}",
            detail={"reference": reference},
        )
    return manifest


@dataclass
class Reference:
    """A child of an index, as the index lists it."""

    child_id: int | None
    digest: str
    media_type: str
    size: int
    platform: dict[str, Any] | None
    annotations: dict[str, Any] | None
    urls: list[str]


@dataclass
class Artifact:
    """A manifest with everything the REST API shows about it."""

    manifest: Manifest
    size: int
    kind: str
    tags: list[Tag] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    accessories: list[Manifest] = field(default_factory=list)

    @property
    def platforms(self) -> list[dict[str, Any]]:
        return [r.platform for r in self.references if r.platform]


def artifacts_describe(
    manifests: list[Manifest],
    *,
    repository: Repository,
    with_tag: bool = True,
    with_label: bool = False,
    with_accessory: bool = False,
) -> list[Artifact]:
    """Describe manifests of one repository: at most seven queries, whatever their number."""
    ids = [m.pk for m in manifests]
    children = _children(ids)
    child_ids = [c.child_id for refs in children.values() for c in refs if c.child_id]
    blob_bytes = _blob_bytes(ids + child_ids)
    found = []
    for manifest in manifests:
        references = children.get(manifest.pk, [])
        size = manifest.size + blob_bytes.get(manifest.pk, 0)
        size += sum(r.size + blob_bytes.get(r.child_id or 0, 0) for r in references)
        found.append(Artifact(manifest, size, artifact_kind(manifest), references=references))
    by_id = {a.manifest.pk: a for a in found}
    if with_tag:
        for tag in Tag.objects.filter(manifest_id__in=ids).order_by("name"):
            by_id[tag.manifest_id].tags.append(tag)
    if with_label:
        links = ArtifactLabel.objects.filter(manifest_id__in=ids).select_related("label")
        for link in links.order_by("label__name"):
            by_id[link.manifest_id].labels.append(link.label)
    if with_accessory:
        by_digest = {a.manifest.digest: a for a in found}
        referrers = Manifest.objects.filter(
            repository=repository, subject_digest__in=list(by_digest)
        ).defer("body")
        for referrer in referrers.order_by("pushed_at", "id"):
            by_digest[referrer.subject_digest].accessories.append(referrer)
    return found


def _children(ids: list[int]) -> dict[int, list[Reference]]:
    """The children of the indexes among ``ids``, in the order their index lists them."""
    Through = Manifest.children.through
    links = Through.objects.filter(from_manifest_id__in=ids).values_list(
        "from_manifest_id", "to_manifest_id", "to_manifest__digest"
    )
    child_of: dict[tuple[int, str], int] = {(p, digest): c for p, c, digest in links}
    parents = {p for p, _ in child_of}
    if not parents:
        return {}
    found: dict[int, list[Reference]] = defaultdict(list)
    for pk, body in Manifest.objects.filter(pk__in=parents).values_list("pk", "body"):
        for entry in json.loads(bytes(body)).get("manifests", []):
            found[pk].append(
                Reference(
                    child_id=child_of.get((pk, entry.get("digest", ""))),
                    digest=entry.get("digest", ""),
                    media_type=entry.get("mediaType", ""),
                    size=int(entry.get("size", 0)),
                    platform=entry.get("platform"),
                    annotations=entry.get("annotations"),
                    urls=entry.get("urls") or [],
                )
            )
    return found


def _blob_bytes(ids: list[int]) -> dict[int, int]:
    """Bytes of the blobs (config and layers) each manifest refers to."""
    Through = Manifest.blobs.through
    rows = (
        Through.objects.filter(manifest_id__in=ids)
        .values("manifest_id")
        .annotate(total=Sum("blob__size"))
    )
    return {row["manifest_id"]: int(row["total"] or 0) for row in rows}


# --- labels ----------------------------------------------------------------------------------


def labels_of(project: Project | None) -> QuerySet[Label]:
    """Global labels (``project`` None) or a project's, by name."""
    if project is None:
        return Label.objects.filter(scope=Label.GLOBAL).order_by("name")
    return Label.objects.filter(scope=Label.PROJECT, project=project).order_by("name")
