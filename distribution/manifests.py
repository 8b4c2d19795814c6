"""Parsing and checking of manifest documents (no database, no storage).

Supported: Docker schema2 manifests and manifest lists, OCI image manifests
(artifacts included: ``artifactType``, empty config) and OCI indexes.  The
result says what the manifest refers to, so the service can check that it
all exists before storing anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ManifestInvalid
from .grammar import check_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)

IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: dict[str, Any] | None = None


@dataclass
class ParsedManifest:
    """What a manifest is and what it refers to."""

    digest: str
    media_type: str
    artifact_type: str = ""
    blobs: list[Descriptor] = field(default_factory=list)  # config and layers
    manifests: list[Descriptor] = field(default_factory=list)  # children of an index
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


def manifest_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Parse a manifest body as pushed; raise ManifestInvalid with a precise reason."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestInvalid(f"manifest is not valid JSON: {error}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    media_type = _media_type(doc, _bare_type(content_type))
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    parsed = ParsedManifest(digest=manifest_digest(body), media_type=media_type)
    artifact_type = doc.get("artifactType", "")
    if not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    if media_type in IMAGE_TYPES:
        config = _descriptor(doc.get("config"), "config")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestInvalid("an image manifest needs a layers array")
        parsed.blobs = [config] + [_descriptor(d, f"layers[{i}]") for i, d in enumerate(layers)]
        # Referrers report artifactType, falling back to the config's media type.
        parsed.artifact_type = artifact_type or config.media_type
    else:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("an index needs a manifests array")
        parsed.manifests = [_descriptor(d, f"manifests[{i}]") for i, d in enumerate(children)]
        parsed.artifact_type = artifact_type
    if "subject" in doc:
        parsed.subject = _descriptor(doc["subject"], "subject")
    annotations = doc.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise ManifestInvalid("annotations must map strings to strings")
        parsed.annotations = annotations
    return parsed


def _bare_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _media_type(doc: dict[str, Any], content_type: str) -> str:
    """The manifest's media type: the Content-Type, checked against the document."""
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if content_type in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1:
        raise ManifestInvalid("Docker schema1 manifests are not supported; push schema2 or OCI")
    if content_type in MANIFEST_TYPES:
        if declared and declared != content_type:
            raise ManifestInvalid(
                f"Content-Type {content_type} disagrees with mediaType {declared} in the manifest"
            )
        return content_type
    if declared in MANIFEST_TYPES:
        return declared
    if declared:
        raise ManifestInvalid(f"unsupported manifest media type {declared}")
    if content_type and content_type not in ("application/json", "application/octet-stream"):
        raise ManifestInvalid(f"unsupported manifest media type {content_type}")
    # Neither says: an OCI document is an index if it lists manifests.
    return OCI_INDEX if "manifests" in doc else OCI_MANIFEST


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType is missing")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest is missing")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    try:
        check_digest(digest)
    except Exception:
        raise ManifestInvalid(f"{where}.digest {digest!r} is not a valid digest") from None
    urls = value.get("urls") or ()
    if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}.urls must be an array of strings")
    platform = value.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestInvalid(f"{where}.platform must be an object")
    return Descriptor(media_type, digest, size, tuple(urls), platform)
