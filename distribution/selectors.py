"""Reads of the distribution app: blobs, manifests, tags, catalog and referrers."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import Collate

from projects.models import Project

from .blobstore import blob_store
from .exceptions import BlobUnknown, ManifestUnknown, NameUnknown, PaginationInvalid
from .grammar import check_digest, check_name, check_tag, is_digest
from .manifests import INDEX_TYPES, Descriptor, parse_manifest
from .models import Blob, BlobState, Manifest, Repository, RepositoryBlob, Tag
from .storage import StorageError

# The lookups every pull makes (a manifest by tag or digest, a blob of a repository)
# run as fixed SQL: compiling the equivalent ORM query costs about three times as
# much as running it, and these are most of a registry's requests.


@functools.cache
def _hot_sql() -> dict[str, str]:
    manifest, repository = Manifest._meta.db_table, Repository._meta.db_table
    tag, blob, link = Tag._meta.db_table, Blob._meta.db_table, RepositoryBlob._meta.db_table
    columns = "m.id, m.repository_id, m.digest, m.media_type, m.artifact_type, m.size"
    manifest_from = (
        f"FROM {manifest} m JOIN {repository} r ON r.id = m.repository_id WHERE r.name = %s"
    )
    return {
        "manifest_by_digest": f"SELECT {columns}{{body}} {manifest_from} AND m.digest = %s",
        "manifest_by_tag": (
            f"SELECT {columns}{{body}} FROM {manifest} m "
            f"JOIN {repository} r ON r.id = m.repository_id "
            f"JOIN {tag} t ON t.manifest_id = m.id WHERE r.name = %s AND t.name = %s"
        ),
        # a blob garbage collection is deleting is gone already for readers
        "blob": (
            f"SELECT b.id, b.digest, b.size FROM {blob} b JOIN {link} l ON l.blob_id = b.id "
            f"JOIN {repository} r ON r.id = l.repository_id WHERE r.name = %s AND b.digest = %s "
            f"AND b.state <> '{BlobState.DELETING.value}'"
        ),
    }


def blob_get(*, repository_name: str, digest: str) -> Blob:
    """Blob ``digest`` as seen from a repository, or BlobUnknown if it may not see it."""
    check_digest(digest)
    blob = next(iter(Blob.objects.raw(_hot_sql()["blob"], [repository_name, digest])), None)
    if blob is None:
        raise BlobUnknown("blob unknown to registry", detail={"digest": digest})
    return blob


def manifest_get(
    *, repository_name: str, reference: str, accept: list[str], with_body: bool = True
) -> Manifest:
    """The manifest a tag or digest names, in a media type the client accepts.

    When a tag names an index the client cannot read, the linux/amd64 child is
    served instead, as the reference registry does for old clients.  A digest
    always means those exact bytes: any other unacceptable type is
    MANIFEST_UNKNOWN.
    """
    manifest = _manifest_by_reference(repository_name, reference, with_body)
    if _accepts(accept, manifest.media_type):
        return manifest
    if manifest.media_type in INDEX_TYPES and not is_digest(reference):
        child = _default_platform_child(manifest, accept)
        if child is not None:
            return child
    raise ManifestUnknown(
        f"manifest is {manifest.media_type}, which the Accept header does not allow",
        detail={"mediaType": manifest.media_type, "accept": accept},
    )


def _manifest_by_reference(repository_name: str, reference: str, with_body: bool) -> Manifest:
    if is_digest(reference):
        sql = _hot_sql()["manifest_by_digest"]
        check_digest(reference)
    else:
        sql = _hot_sql()["manifest_by_tag"]
        check_tag(reference)
    sql = sql.format(body=", m.body" if with_body else "")  # without it, body loads lazily
    manifest = next(iter(Manifest.objects.raw(sql, [repository_name, reference])), None)
    if manifest is not None:
        return manifest
    if not Repository.objects.filter(name=repository_name).exists():
        raise NameUnknown("repository name not known to registry", detail={"name": repository_name})
    raise ManifestUnknown("manifest unknown", detail={"reference": reference})


def _accepts(accept: list[str], media_type: str) -> bool:
    if not accept:
        return True  # a client that states no preference takes what is stored
    major = media_type.split("/", 1)[0] + "/*"
    return any(a in (media_type, "*/*", major) for a in accept)


def _default_platform_child(index: Manifest, accept: list[str]) -> Manifest | None:
    digest = default_platform_digest(index)
    child = index.children.filter(digest=digest).first() if digest else None
    if child is not None and _accepts(accept, child.media_type):
        return child
    return None


def default_platform_digest(index: Manifest) -> str | None:
    """The digest of an index's linux/amd64 manifest: what a client that cannot take the
    index gets for its tag (as the reference registry does)."""
    document = json.loads(bytes(index.body))
    for entry in document.get("manifests", []):
        platform = entry.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            digest = entry.get("digest")
            return digest if isinstance(digest, str) else None
    return None


def parse_accept(values: str) -> list[str]:
    """Media types of an Accept header; WSGI joins repeated lines with commas."""
    return [item.split(";", 1)[0].strip().lower() for item in values.split(",") if item.strip()]


@dataclass(frozen=True)
class Page:
    items: list[str]
    next_last: str | None  # the `last` of the next page, when there is one
    n: int


def page_params(n: str | None, last: str | None) -> tuple[int, str | None]:
    """Validate `n` and `last`; a missing or too large `n` means the largest page."""
    limit = settings.HARBORPY_PAGE_MAX
    if n is None or n == "":
        return limit, last
    try:
        value = int(n)
    except ValueError:
        raise PaginationInvalid("n must be an integer", detail={"n": n}) from None
    if value < 0:
        raise PaginationInvalid("n must not be negative", detail={"n": n})
    return min(value, limit), last


def tags_list(*, repository_name: str, n: str | None, last: str | None) -> Page:
    """One page of a repository's tags in lexical order."""
    limit, last = page_params(n, last)
    if last:
        check_tag(last)
    if not Repository.objects.filter(name=repository_name).exists():
        raise NameUnknown("repository name not known to registry", detail={"name": repository_name})
    return _page(Tag.objects.filter(repository__name=repository_name), "name", limit, last)


def catalog(*, n: str | None, last: str | None) -> Page:
    """One page of repository names in lexical order."""
    limit, last = page_params(n, last)
    if last:
        check_name(last)
    return _page(Repository.objects.all(), "name", limit, last)


def _page(queryset: QuerySet[Any], field: str, limit: int, last: str | None) -> Page:
    if limit == 0:
        return Page([], None, 0)
    # Byte order, whatever the database's default collation.
    collation = "C" if connection.vendor == "postgresql" else "BINARY"
    queryset = queryset.alias(key=Collate(F(field), collation))
    if last:
        queryset = queryset.filter(key__gt=last)
    items = list(queryset.order_by("key").values_list(field, flat=True)[: limit + 1])
    if len(items) > limit:
        items = items[:limit]
        return Page(items, items[-1], limit)
    return Page(items, None, limit)


def project_usage(*, project: Project) -> int:
    """Bytes of the distinct blobs a project's repositories hold (each blob counted once)."""
    linked = RepositoryBlob.objects.filter(repository__project=project).values("blob_id")
    total = Blob.objects.filter(id__in=linked).aggregate(total=Sum("size"))["total"]
    return int(total or 0)


def storage_usage() -> int:
    """Bytes of the distinct blobs any repository holds (what every project uses, once each)."""
    linked = RepositoryBlob.objects.values("blob_id")
    total = Blob.objects.filter(id__in=linked).aggregate(total=Sum("size"))["total"]
    return int(total or 0)


def referrers(*, repository_name: str, digest: str, artifact_type: str | None) -> dict[str, Any]:
    """The OCI index of manifests in the repository whose subject is ``digest``."""
    check_digest(digest)
    manifests = Manifest.objects.filter(repository__name=repository_name, subject_digest=digest)
    if artifact_type:
        manifests = manifests.filter(artifact_type=artifact_type)
    descriptors = []
    for m in manifests.order_by("created_at", "id").only(
        "digest", "media_type", "size", "artifact_type", "annotations"
    ):
        descriptor: dict[str, Any] = {"mediaType": m.media_type, "digest": m.digest, "size": m.size}
        if m.artifact_type:
            descriptor["artifactType"] = m.artifact_type
        if m.annotations:
            descriptor["annotations"] = m.annotations
        descriptors.append(descriptor)
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors,
    }


# --- the console's views of repositories and artifacts ------------------------------------------

CONFIG_MAX_BYTES = 1 << 20  # larger configs are not shown (they are JSON a person reads)


def repository_get(*, name: str) -> Repository | None:
    return Repository.objects.select_related("project").filter(name=name).first()


def repository_list(*, project: Project, query: str = "") -> QuerySet[Repository]:
    """A project's repositories by name, each with ``artifacts`` (top-level manifests: not
    the children of an index, not referrers), ``tag_count`` and ``pushed_at``."""
    top = Q(manifests__subject_digest="", manifests__parents__isnull=True)
    repositories = Repository.objects.filter(project=project)
    if query:
        repositories = repositories.filter(name__icontains=query)
    return repositories.order_by("name").annotate(
        artifacts=Count("manifests", filter=top, distinct=True),
        tag_count=Count("tags", distinct=True),
        pushed_at=Max("manifests__created_at"),
    )


@dataclass
class Artifact:
    """A manifest as the console shows it: its tags, total size and platforms (an index's)."""

    manifest: Manifest
    tags: list[str]
    size: int  # the manifest, its config and layers; an index adds its children's
    platforms: list[str]


def artifact_list(*, repository: Repository) -> list[Artifact]:
    """The repository's top-level artifacts, newest first (index children and referrers
    appear on the artifact page of their index or subject)."""
    manifests = (
        Manifest.objects.filter(repository=repository, subject_digest="", parents__isnull=True)
        .order_by("-created_at", "-id")
        .prefetch_related("tags", "blobs", "children__blobs")
    )
    return [_artifact(m) for m in manifests]


@dataclass
class ArtifactDetail(Artifact):
    config: Descriptor | None = None
    config_json: str = ""  # pretty-printed; empty when not JSON or too large
    layers: list[Descriptor] = field(default_factory=list)
    children: list[tuple[Descriptor, str]] = field(default_factory=list)  # with the platform
    referrers: list[Manifest] = field(default_factory=list)
    subject: Manifest | None = None


def artifact_get(*, repository: Repository, digest: str) -> ArtifactDetail:
    """One manifest of the repository with its layers, config, children, referrers and
    subject; ManifestUnknown if the repository holds no manifest ``digest``."""
    check_digest(digest)
    manifest = (
        Manifest.objects.filter(repository=repository, digest=digest)
        .prefetch_related("tags", "blobs", "children__blobs")
        .first()
    )
    if manifest is None:
        raise ManifestUnknown("manifest unknown", detail={"digest": digest})
    parsed = parse_manifest(bytes(manifest.body), manifest.media_type)
    base = _artifact(manifest)
    detail = ArtifactDetail(**vars(base))
    if parsed.blobs:
        detail.config, detail.layers = parsed.blobs[0], parsed.blobs[1:]
        detail.config_json = _config_json(detail.config)
    detail.children = [(d, _platform(d.platform)) for d in parsed.manifests]
    detail.referrers = list(
        Manifest.objects.filter(repository=repository, subject_digest=digest).order_by(
            "created_at", "id"
        )
    )
    if manifest.subject_digest:
        detail.subject = Manifest.objects.filter(
            repository=repository, digest=manifest.subject_digest
        ).first()
    return detail


def _artifact(manifest: Manifest) -> Artifact:
    size = manifest.size + sum(b.size for b in manifest.blobs.all())
    platforms: list[str] = []
    if manifest.media_type in INDEX_TYPES:
        size += sum(c.size + sum(b.size for b in c.blobs.all()) for c in manifest.children.all())
        entries = json.loads(bytes(manifest.body)).get("manifests", [])
        platforms = [_platform(e.get("platform")) for e in entries if isinstance(e, dict)]
    tags = sorted(t.name for t in manifest.tags.all())
    return Artifact(manifest, tags, size, [p for p in platforms if p])


def _platform(platform: Any) -> str:
    if not isinstance(platform, dict):
        return ""
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if p)


def _config_json(config: Descriptor) -> str:
    if config.size > CONFIG_MAX_BYTES or "json" not in config.media_type:
        return ""
    # A small bounded read: the config is capped above and a person reads it whole.
    try:
        reader = blob_store().blob_open(config.digest)
    except StorageError:
        return ""
    try:
        data = b"".join(reader.chunks)
    finally:
        reader.close()
    try:
        return json.dumps(json.loads(data), indent=2, sort_keys=True)
    except ValueError:
        return ""
