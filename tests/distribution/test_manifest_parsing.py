"""Unit tests of manifest parsing and the spec's grammar: no server, no database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from distribution.exceptions import DigestInvalid, ManifestInvalid, NameInvalid, TagInvalid
from distribution.grammar import check_digest, check_name, check_tag, is_digest
from distribution.manifests import Descriptor, parse_manifest
from tests.distribution.helpers import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Pushed,
    descriptor,
    digest_of,
    encode,
    make_image_manifest,
    make_index,
    odd_encoding,
)

CONFIG = b'{"architecture": "amd64", "os": "linux"}'
LAYERS = [b"layer one", b"layer two"]
SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128


def as_descriptor(data: bytes, media_type: str, **extra: Any) -> Descriptor:
    return Descriptor(media_type, digest_of(data), len(data), **extra)


def image(media_type: str = OCI_MANIFEST, **fields: Any) -> dict[str, Any]:
    return make_image_manifest(CONFIG, LAYERS, media_type=media_type, **fields)


def index(media_type: str = OCI_INDEX, **fields: Any) -> dict[str, Any]:
    children = [
        Pushed(SHA256, b"x" * 10, OCI_MANIFEST, platform={"os": "linux", "architecture": "amd64"}),
        Pushed("sha256:" + "c" * 64, b"y" * 20, OCI_MANIFEST),
    ]
    return make_index(children, media_type=media_type, **fields)


# --- parse_manifest: what a manifest is ----------------------------------------------------


def test_docker_manifest():
    body = odd_encoding(image(DOCKER_MANIFEST))
    parsed = parse_manifest(body, DOCKER_MANIFEST)
    assert parsed.media_type == DOCKER_MANIFEST
    assert parsed.digest == digest_of(body)
    assert parsed.blobs == [
        as_descriptor(CONFIG, DOCKER_CONFIG),
        *(as_descriptor(layer, DOCKER_LAYER) for layer in LAYERS),
    ]
    assert parsed.manifests == []
    assert parsed.artifact_type == DOCKER_CONFIG
    assert parsed.subject is None
    assert parsed.annotations is None


def test_oci_manifest_digest_is_of_the_exact_bytes():
    compact = encode(image())
    spaced = json.dumps(image(), indent=2).encode()
    assert parse_manifest(compact, OCI_MANIFEST).digest == digest_of(compact)
    assert parse_manifest(spaced, OCI_MANIFEST).digest == digest_of(spaced)
    assert digest_of(compact) != digest_of(spaced)


def test_oci_manifest():
    parsed = parse_manifest(encode(image()), OCI_MANIFEST)
    assert parsed.media_type == OCI_MANIFEST
    assert parsed.blobs == [
        as_descriptor(CONFIG, OCI_CONFIG),
        *(as_descriptor(layer, OCI_LAYER) for layer in LAYERS),
    ]
    assert parsed.artifact_type == OCI_CONFIG


def test_oci_artifact_with_subject_and_annotations():
    subject = {"mediaType": OCI_MANIFEST, "digest": SHA256, "size": 123}
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": descriptor(OCI_EMPTY, EMPTY_JSON),
        "layers": [descriptor("text/spdx", b"sbom", urls=["https://example.com/sbom"])],
        "subject": subject,
        "annotations": {"org.example": "value"},
    }
    parsed = parse_manifest(encode(document), OCI_MANIFEST)
    assert parsed.artifact_type == "application/vnd.example.sbom"
    assert parsed.subject == Descriptor(OCI_MANIFEST, SHA256, 123)
    assert parsed.annotations == {"org.example": "value"}
    assert parsed.blobs == [
        as_descriptor(EMPTY_JSON, OCI_EMPTY),
        as_descriptor(b"sbom", "text/spdx", urls=("https://example.com/sbom",)),
    ]


def test_artifact_without_layers_entries():
    document = image(artifactType="application/vnd.example")
    document["layers"] = []
    parsed = parse_manifest(encode(document), OCI_MANIFEST)
    assert parsed.blobs == [as_descriptor(CONFIG, OCI_CONFIG)]


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index(media_type):
    parsed = parse_manifest(encode(index(media_type)), media_type)
    assert parsed.media_type == media_type
    assert parsed.blobs == []
    assert parsed.manifests == [
        Descriptor(OCI_MANIFEST, SHA256, 10, platform={"os": "linux", "architecture": "amd64"}),
        Descriptor(OCI_MANIFEST, "sha256:" + "c" * 64, 20),
    ]
    assert parsed.artifact_type == ""


def test_index_with_artifact_type_and_subject():
    subject = {"mediaType": OCI_MANIFEST, "digest": SHA512, "size": 5}
    document = index(artifactType="application/vnd.example.bundle", subject=subject)
    parsed = parse_manifest(encode(document), OCI_INDEX)
    assert parsed.artifact_type == "application/vnd.example.bundle"
    assert parsed.subject == Descriptor(OCI_MANIFEST, SHA512, 5)


@pytest.mark.parametrize(
    "content_type",
    [
        f"{OCI_MANIFEST}; charset=utf-8",
        "Application/VND.OCI.Image.Manifest.v1+JSON",
        f"  {OCI_MANIFEST}  ",
    ],
)
def test_content_type_parameters_and_case(content_type):
    assert parse_manifest(encode(image()), content_type).media_type == OCI_MANIFEST


@pytest.mark.parametrize("content_type", [None, "", "application/json", "application/octet-stream"])
def test_media_type_from_the_document(content_type):
    assert parse_manifest(encode(image(DOCKER_MANIFEST)), content_type).media_type == (
        DOCKER_MANIFEST
    )
    assert parse_manifest(encode(index(DOCKER_LIST)), content_type).media_type == DOCKER_LIST


@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_media_type_inferred_when_nobody_says(content_type):
    bare_image = {k: v for k, v in image().items() if k != "mediaType"}
    bare_index = {k: v for k, v in index().items() if k != "mediaType"}
    assert parse_manifest(encode(bare_image), content_type).media_type == OCI_MANIFEST
    assert parse_manifest(encode(bare_index), content_type).media_type == OCI_INDEX


def test_content_type_names_the_type_when_the_document_does_not():
    bare = {k: v for k, v in image(DOCKER_MANIFEST).items() if k != "mediaType"}
    assert parse_manifest(encode(bare), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST


# --- parse_manifest: what it refuses ----------------------------------------------------------


def with_config(**changes: Any) -> dict[str, Any]:
    document = image()
    document["config"] = {**document["config"], **changes}
    return document


def without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != key}


INVALID: dict[str, tuple[bytes, str | None]] = {
    "truncated JSON": (encode(image())[:-1], OCI_MANIFEST),
    "empty body": (b"", OCI_MANIFEST),
    "not UTF-8": (b'{"a": "\xff\xfe"}', OCI_MANIFEST),
    "array": (b"[1, 2]", OCI_MANIFEST),
    "number": (b"2", OCI_MANIFEST),
    "null": (b"null", OCI_MANIFEST),
    "schemaVersion 1": (encode({**image(), "schemaVersion": 1}), OCI_MANIFEST),
    "schemaVersion string": (encode({**image(), "schemaVersion": "2"}), OCI_MANIFEST),
    "schemaVersion missing": (encode(without(image(), "schemaVersion")), OCI_MANIFEST),
    "schema1 content type": (encode({"schemaVersion": 1, "fsLayers": []}), DOCKER_SCHEMA1),
    "schema1 mediaType": (
        encode({"schemaVersion": 2, "mediaType": DOCKER_SCHEMA1, "layers": []}),
        None,
    ),
    "schema1 unsigned content type": (
        encode(image()),
        "application/vnd.docker.distribution.manifest.v1+json",
    ),
    "content type disagrees": (encode(image(DOCKER_MANIFEST)), OCI_MANIFEST),
    "index body under image content type": (encode(index()), OCI_MANIFEST),
    "mediaType not a string": (encode({**image(), "mediaType": 5}), None),
    "unknown mediaType": (encode({**image(), "mediaType": "application/x-foo"}), None),
    "unknown content type": (encode(without(image(), "mediaType")), "text/plain"),
    "layers missing": (encode(without(image(), "layers")), OCI_MANIFEST),
    "layers not an array": (encode({**image(), "layers": {}}), OCI_MANIFEST),
    "config missing": (encode(without(image(), "config")), OCI_MANIFEST),
    "config not an object": (encode({**image(), "config": [CONFIG.decode()]}), OCI_MANIFEST),
    "manifests missing": (encode(without(index(), "manifests")), OCI_INDEX),
    "manifests not an array": (encode({**index(), "manifests": "x"}), OCI_INDEX),
    "negative size": (encode(with_config(size=-1)), OCI_MANIFEST),
    "fractional size": (encode(with_config(size=1.5)), OCI_MANIFEST),
    "float size": (encode(with_config(size=2.0)), OCI_MANIFEST),
    "boolean size": (encode(with_config(size=True)), OCI_MANIFEST),
    "size missing": (
        encode({**image(), "config": without(image()["config"], "size")}),
        OCI_MANIFEST,
    ),
    "digest missing": (
        encode({**image(), "config": without(image()["config"], "digest")}),
        OCI_MANIFEST,
    ),
    "malformed digest": (encode(with_config(digest="sha256:xyz")), OCI_MANIFEST),
    "unsupported digest": (encode(with_config(digest="md5:" + "a" * 32)), OCI_MANIFEST),
    "empty mediaType in descriptor": (encode(with_config(mediaType="")), OCI_MANIFEST),
    "urls not an array": (encode(with_config(urls="https://x")), OCI_MANIFEST),
    "urls not strings": (encode(with_config(urls=[1])), OCI_MANIFEST),
    "platform not an object": (
        encode({**index(), "manifests": [{**index()["manifests"][0], "platform": "linux"}]}),
        OCI_INDEX,
    ),
    "subject not an object": (encode({**image(), "subject": SHA256}), OCI_MANIFEST),
    "subject without size": (
        encode({**image(), "subject": {"mediaType": OCI_MANIFEST, "digest": SHA256}}),
        OCI_MANIFEST,
    ),
    "annotations not an object": (encode({**image(), "annotations": ["a"]}), OCI_MANIFEST),
    "annotation value not a string": (encode({**image(), "annotations": {"a": 1}}), OCI_MANIFEST),
    "artifactType not a string": (encode({**image(), "artifactType": ["a"]}), OCI_MANIFEST),
}


@pytest.mark.parametrize(("body", "content_type"), INVALID.values(), ids=INVALID.keys())
def test_invalid_manifest(body, content_type):
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(body, content_type)
    assert caught.value.message


def test_refusals_say_why():
    with pytest.raises(ManifestInvalid, match="schema1"):
        parse_manifest(encode({"schemaVersion": 1}), DOCKER_SCHEMA1)
    with pytest.raises(ManifestInvalid, match=r"layers\[1\]\.size"):
        document = image()
        document["layers"][1]["size"] = -5
        parse_manifest(encode(document), OCI_MANIFEST)
    with pytest.raises(ManifestInvalid, match="disagrees"):
        parse_manifest(encode(image(DOCKER_MANIFEST)), OCI_MANIFEST)


# --- grammar: names ---------------------------------------------------------------------------

VALID_NAMES = [
    "a",
    "0",
    "library/ubuntu",
    "a/b/c/d/e",
    "a.b",
    "a_b",
    "a__b",
    "a-b",
    "a---b",
    "a.b-c_d__e/f0",
    "a" * 255,
    "a" * 127 + "/" + "b" * 127,
]
INVALID_NAMES = [
    "",
    "A",
    "library/Ubuntu",
    "a___b",
    "a._b",
    "a_.b",
    "a..b",
    "a.-b",
    "a-",
    "-a",
    ".a",
    "_a",
    "a_",
    "a/",
    "/a",
    "a//b",
    "a/../b",
    "a/./b",
    "..",
    "a b",
    "a:b",
    "a@b",
    "ä",
    "a\n",
    "a" * 256,
    "a" * 128 + "/" + "b" * 127,
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_name(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_name(name):
    with pytest.raises(NameInvalid):
        check_name(name)


# --- grammar: tags ----------------------------------------------------------------------------

VALID_TAGS = ["a", "A", "_", "0", "_x", "1.0", "latest", "v1.2.3-rc.1_build", "a" * 128, "9" * 128]
INVALID_TAGS = ["", "-a", ".a", "a+b", "a:b", "a/b", "a b", "a@b", "ä", "a\n", "a" * 129]


@pytest.mark.parametrize("tag", VALID_TAGS)
def test_valid_tag(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", INVALID_TAGS)
def test_invalid_tag(tag):
    with pytest.raises(TagInvalid):
        check_tag(tag)


# --- grammar: digests -------------------------------------------------------------------------

INVALID_DIGESTS = {
    "empty": "",
    "no colon": "a" * 64,
    "no encoded part": "sha256:",
    "no algorithm": ":" + "a" * 64,
    "not hex": "sha256:xyz",
    "uppercase hex": "sha256:" + "A" * 64,
    "63 hex digits": "sha256:" + "a" * 63,
    "65 hex digits": "sha256:" + "a" * 65,
    "uppercase algorithm": "SHA256:" + "a" * 64,
    "md5": "md5:" + "a" * 32,
    "sha384": "sha384:" + "a" * 96,
    "sha512 of sha256 length": "sha512:" + "a" * 64,
    "space": "sha256:" + "a" * 63 + " ",
    "two colons": "sha256:" + "a" * 32 + ":" + "a" * 32,
}


@pytest.mark.parametrize("digest", [SHA256, SHA512, digest_of(b""), digest_of(b"", "sha512")])
def test_valid_digest(digest):
    assert check_digest(digest) == digest


@pytest.mark.parametrize("digest", INVALID_DIGESTS.values(), ids=INVALID_DIGESTS.keys())
def test_invalid_digest(digest):
    with pytest.raises(DigestInvalid):
        check_digest(digest)


def test_is_digest():
    assert is_digest(SHA256)
    assert is_digest("sha256:xyz")  # a digest reference, to be rejected by check_digest
    assert not is_digest("latest")
    assert not is_digest("1.0")
