"""The OCI distribution API as a client sees it, against a live server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import requests

from projects.models import Project
from tests.distribution.helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    MiB,
    Pushed,
    absolute,
    assert_error,
    blob_file,
    blob_files,
    digest_of,
    get_manifest,
    make_config,
    make_image_manifest,
    next_link,
    odd_encoding,
    patch_chunk,
    push_artifact,
    push_blob,
    push_image,
    push_index,
    push_manifest,
    send,
    start_upload,
    tags_of,
    upload_data_size,
    upload_dirs,
    upload_id_of,
)
from tests.fixtures import authed

NAME = "lib/app"


def test_base_endpoint_announces_the_api_version(registry):
    response = authed.get(f"{registry.url}/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


# --- blob uploads -------------------------------------------------------------------------


def assert_blob_created(registry, response, name: str, data: bytes) -> None:
    digest = digest_of(data)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    location = absolute(registry, response.headers["Location"])
    assert location == f"{registry.url}/v2/{name}/blobs/{digest}"
    fetched = authed.get(location)
    assert fetched.status_code == 200
    assert fetched.content == data


def test_monolithic_post(registry):
    data = os.urandom(5000)
    response = authed.post(
        f"{registry.url}/v2/{NAME}/blobs/uploads/",
        params={"digest": digest_of(data)},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_blob_created(registry, response, NAME, data)
    assert blob_file(registry, digest_of(data)).read_bytes() == data


def test_post_then_put_with_body(registry):
    data = os.urandom(3000)
    location = start_upload(registry, NAME)
    response = authed.put(location, params={"digest": digest_of(data)}, data=data)
    assert_blob_created(registry, response, NAME, data)


def test_upload_session_headers(registry):
    response = authed.post(f"{registry.url}/v2/{NAME}/blobs/uploads/")
    assert response.status_code == 202
    upload_id = response.headers["Docker-Upload-UUID"]
    assert response.headers["Location"] == f"/v2/{NAME}/blobs/uploads/{upload_id}"
    assert response.headers["Range"] == "0-0"


def test_chunked_upload_with_content_range(registry):
    data = os.urandom(3 * MiB + 123)
    location = start_upload(registry, NAME)
    upload_id = upload_id_of(location)
    offset = 0
    for size in (MiB + 7, 1, 2 * MiB):
        response = patch_chunk(location, data[offset : offset + size], offset)
        offset += size
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{offset - 1}"
        assert response.headers["Docker-Upload-UUID"] == upload_id
        location = absolute(registry, response.headers["Location"])
        assert upload_id_of(location) == upload_id
    final = data[offset:]
    response = authed.put(
        location,
        params={"digest": digest_of(data)},
        data=final,
        headers={"Content-Range": f"{offset}-{len(data) - 1}"},
    )
    assert_blob_created(registry, response, NAME, data)
    assert upload_id not in upload_dirs(registry)


def test_chunked_upload_completed_by_empty_put(registry):
    data = os.urandom(2000)
    location = start_upload(registry, NAME)
    assert patch_chunk(location, data[:1000], 0).status_code == 202
    response = patch_chunk(location, data[1000:], 1000)
    assert response.headers["Range"] == "0-1999"
    response = authed.put(
        absolute(registry, response.headers["Location"]), params={"digest": digest_of(data)}
    )
    assert_blob_created(registry, response, NAME, data)
    assert_error(authed.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_streamed_patch_with_transfer_encoding_chunked(registry):
    """docker streams a layer as one PATCH with a chunked body, no length and no range."""
    pieces = [os.urandom(size) for size in (10, MiB - 3, 70_000, MiB + 5, 1)]
    data = b"".join(pieces)

    def body() -> Iterator[bytes]:
        yield from pieces

    location = start_upload(registry, NAME)
    path = location.removeprefix(registry.url)
    response = send(
        registry,
        "PATCH",
        path,
        headers=[("Content-Type", "application/octet-stream")],
        body=body(),
    )
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    assert upload_data_size(registry, upload_id_of(location)) == len(data)
    response = authed.put(location, params={"digest": digest_of(data)})
    assert_blob_created(registry, response, NAME, data)


def test_upload_status(registry):
    location = start_upload(registry, NAME)
    response = authed.get(location)
    assert response.status_code == 204
    assert response.headers["Range"] == "0-0"
    assert patch_chunk(location, b"x" * 42, 0).status_code == 202
    response = authed.get(location)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["Range"] == "0-41"
    assert response.headers["Docker-Upload-UUID"] == upload_id_of(location)
    assert absolute(registry, response.headers["Location"]) == location


def test_cancel_upload(registry):
    location = start_upload(registry, NAME)
    assert patch_chunk(location, b"abc", 0).status_code == 202
    assert upload_id_of(location) in upload_dirs(registry)
    response = authed.delete(location)
    assert response.status_code == 204
    assert_error(authed.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert upload_id_of(location) not in upload_dirs(registry)


def test_url_encoded_digests(registry):
    data = os.urandom(700)
    digest = digest_of(data)
    encoded = digest.replace(":", "%3A")
    response = authed.post(f"{registry.url}/v2/{NAME}/blobs/uploads/?digest={encoded}", data=data)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    location = start_upload(registry, NAME)
    other = os.urandom(10)
    response = authed.put(f"{location}?digest={digest_of(other).replace(':', '%3A')}", data=other)
    assert response.status_code == 201, response.text
    response = authed.get(f"{registry.url}/v2/{NAME}/blobs/{encoded}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Docker-Content-Digest"] == digest


def test_sha512_digest(registry):
    data = os.urandom(900)
    digest = digest_of(data, "sha512")
    response = authed.post(
        f"{registry.url}/v2/{NAME}/blobs/uploads/", params={"digest": digest}, data=data
    )
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest}").content == data


def test_empty_blob(registry):
    location = start_upload(registry, NAME)
    response = authed.put(location, params={"digest": digest_of(b"")})
    assert_blob_created(registry, response, NAME, b"")


# --- blob reads ---------------------------------------------------------------------------


@pytest.fixture
def blob(registry) -> tuple[str, bytes]:
    data = os.urandom(100)
    return push_blob(registry, NAME, data), data


def test_blob_head(registry, blob):
    digest, data = blob
    response = authed.head(f"{registry.url}/v2/{NAME}/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content == b""


def test_blob_get(registry, blob):
    digest, data = blob
    response = authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Docker-Content-Digest"] == digest


def test_large_blob_get(registry):
    data = os.urandom(3 * MiB + 11)
    digest = push_blob(registry, NAME, data)
    response = authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == data
    start, end = MiB - 5, 2 * MiB + 5
    response = authed.get(
        f"{registry.url}/v2/{NAME}/blobs/{digest}", headers={"Range": f"bytes={start}-{end}"}
    )
    assert response.status_code == 206
    assert response.content == data[start : end + 1]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=-7", 93, 99),
        ("bytes=95-", 95, 99),
        ("bytes=90-500", 90, 99),
    ],
)
def test_blob_range(registry, blob, header, start, end):
    digest, data = blob
    response = authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == data[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/100"
    assert response.headers["Content-Length"] == str(end - start + 1)


def test_blob_range_not_satisfiable(registry, blob):
    digest, _ = blob
    response = authed.get(
        f"{registry.url}/v2/{NAME}/blobs/{digest}", headers={"Range": "bytes=100-150"}
    )
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["Content-Range"] == "bytes */100"


def test_blob_delete(registry, blob):
    digest, _ = blob
    assert authed.delete(f"{registry.url}/v2/{NAME}/blobs/{digest}").status_code == 202
    assert authed.head(f"{registry.url}/v2/{NAME}/blobs/{digest}").status_code == 404
    assert_error(authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(authed.delete(f"{registry.url}/v2/{NAME}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_blob_unknown(registry, blob):
    missing = digest_of(b"never pushed")
    assert authed.head(f"{registry.url}/v2/{NAME}/blobs/{missing}").status_code == 404
    assert_error(authed.get(f"{registry.url}/v2/{NAME}/blobs/{missing}"), 404, "BLOB_UNKNOWN")


def test_blob_is_scoped_to_its_repository(registry, blob):
    digest, _ = blob
    assert authed.head(f"{registry.url}/v2/lib/other/blobs/{digest}").status_code == 404


# --- mount and deduplication --------------------------------------------------------------


def test_cross_repository_mount(registry):
    data = os.urandom(4000)
    digest = push_blob(registry, "lib/a", data)
    before = blob_files(registry)
    response = authed.post(
        f"{registry.url}/v2/lib/b/blobs/uploads/", params={"mount": digest, "from": "lib/a"}
    )
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    location = absolute(registry, response.headers["Location"])
    assert location == f"{registry.url}/v2/lib/b/blobs/{digest}"
    assert authed.get(f"{registry.url}/v2/lib/b/blobs/{digest}").content == data
    assert blob_files(registry) == before


def test_mount_falls_back_to_an_upload(registry):
    push_blob(registry, "lib/a", b"something else")
    digest = digest_of(os.urandom(10))
    response = authed.post(
        f"{registry.url}/v2/lib/b/blobs/uploads/", params={"mount": digest, "from": "lib/a"}
    )
    assert response.status_code == 202, response.text
    assert "Docker-Content-Digest" not in response.headers
    location = absolute(registry, response.headers["Location"])
    upload_id = response.headers["Docker-Upload-UUID"]
    assert location == f"{registry.url}/v2/lib/b/blobs/uploads/{upload_id}"
    assert authed.get(location).status_code == 204
    assert authed.head(f"{registry.url}/v2/lib/b/blobs/{digest}").status_code == 404


def test_same_layer_in_fifty_repositories_is_stored_once(registry):
    data = os.urandom(64 << 10)
    digest = digest_of(data)
    before, uploads_before = blob_files(registry), upload_dirs(registry)
    Project.objects.create(name="dedup")
    names = [f"dedup/r{i}" for i in range(50)]
    for name in names:
        assert push_blob(registry, name, data) == digest
    assert blob_files(registry) - before == {blob_file(registry, digest)}
    assert upload_dirs(registry) == uploads_before
    for name in names:
        assert authed.head(f"{registry.url}/v2/{name}/blobs/{digest}").status_code == 200


# --- manifests ----------------------------------------------------------------------------


def push_kind(registry, kind: str, tag: str) -> Pushed:
    """Push one manifest of each supported kind, with odd JSON formatting."""
    if kind == "docker-manifest":
        return push_image(registry, NAME, tag, media_type=DOCKER_MANIFEST, encoder=odd_encoding)
    if kind == "oci-manifest":
        return push_image(
            registry, NAME, tag, encoder=odd_encoding, annotations={"note": "héllo ✓"}
        )
    if kind == "docker-list":
        return push_index(registry, NAME, tag, media_type=DOCKER_LIST, encoder=odd_encoding)[0]
    if kind == "oci-index":
        return push_index(registry, NAME, tag, encoder=odd_encoding)[0]
    return push_artifact(
        registry, NAME, tag, artifact_type="application/vnd.example.sbom", encoder=odd_encoding
    )


KINDS = ["docker-manifest", "docker-list", "oci-manifest", "oci-index", "oci-artifact"]


def assert_manifest(response, pushed: Pushed, *, head: bool = False) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == pushed.media_type
    assert response.headers["Docker-Content-Digest"] == pushed.digest
    assert response.headers["Content-Length"] == str(len(pushed.body))
    assert response.content == (b"" if head else pushed.body)


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_put_get_head_delete(registry, kind):
    pushed = push_kind(registry, kind, "v1")
    base = f"{registry.url}/v2/{NAME}/manifests"
    for reference in ("v1", pushed.digest):
        assert_manifest(authed.get(f"{base}/{reference}"), pushed)
        assert_manifest(authed.head(f"{base}/{reference}"), pushed, head=True)
    assert authed.delete(f"{base}/v1").status_code == 202
    assert_error(authed.get(f"{base}/v1"), 404, "MANIFEST_UNKNOWN")
    assert_manifest(authed.get(f"{base}/{pushed.digest}"), pushed)
    assert authed.delete(f"{base}/{pushed.digest}").status_code == 202
    assert_error(authed.get(f"{base}/{pushed.digest}"), 404, "MANIFEST_UNKNOWN")
    assert authed.head(f"{base}/{pushed.digest}").status_code == 404


def test_manifest_put_headers(registry):
    pushed = push_image(registry, NAME, "v1")
    again = authed.put(
        f"{registry.url}/v2/{NAME}/manifests/v2",
        data=pushed.body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert again.status_code == 201
    assert again.headers["Docker-Content-Digest"] == pushed.digest
    assert again.headers["Location"] == f"/v2/{NAME}/manifests/{pushed.digest}"
    assert "OCI-Subject" not in again.headers
    assert tags_of(registry, NAME) == ["v1", "v2"]


def test_manifest_put_by_digest_creates_no_tag(registry):
    pushed = push_image(registry, NAME, "v1")
    authed.delete(f"{registry.url}/v2/{NAME}/manifests/v1")
    response = authed.put(
        f"{registry.url}/v2/{NAME}/manifests/{pushed.digest}",
        data=pushed.body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201
    assert tags_of(registry, NAME) == []
    assert_manifest(get_manifest(registry, NAME, pushed.digest), pushed)


def test_manifest_without_media_type_or_content_type(registry):
    """An OCI manifest may omit mediaType; the registry then serves it as an OCI manifest."""
    pushed = push_image(registry, NAME, "v1")
    document = json.loads(pushed.body)
    del document["mediaType"]
    body = json.dumps(document, indent=1).encode()
    response = authed.put(f"{registry.url}/v2/{NAME}/manifests/bare", data=body)
    assert response.status_code == 201, response.text
    fetched = get_manifest(registry, NAME, "bare")
    assert fetched.content == body
    assert fetched.headers["Content-Type"] == OCI_MANIFEST


def test_manifest_pushed_by_sha512_digest_is_pullable_by_it(registry):
    pushed = push_image(registry, NAME, "v1")
    reference = digest_of(pushed.body, "sha512")
    response = authed.put(
        f"{registry.url}/v2/{NAME}/manifests/{reference}",
        data=pushed.body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    fetched = get_manifest(registry, NAME, reference)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == pushed.body


def test_foreign_layers_need_not_be_pushed(registry):
    config = make_config()
    layer = os.urandom(300)
    push_blob(registry, NAME, config)
    push_blob(registry, NAME, layer)
    document = make_image_manifest(config, [layer], media_type=DOCKER_MANIFEST)
    document["layers"].append(
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "digest": digest_of(b"elsewhere"),
            "size": 9,
            "urls": ["https://example.com/layer"],
        }
    )
    response = push_manifest(registry, NAME, "v1", document, DOCKER_MANIFEST)
    assert response.status_code == 201, response.text


def test_delete_unknown_manifest(registry):
    push_image(registry, NAME, "v1")
    base = f"{registry.url}/v2/{NAME}/manifests"
    assert_error(authed.delete(f"{base}/nope"), 404, "MANIFEST_UNKNOWN")
    assert_error(authed.delete(f"{base}/{digest_of(b'nope')}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "name", ["lib/a__b", "lib/a---b", "a.b/c_d/e-f", "0/1", "lib/" + "x" * 200]
)
def test_unusual_valid_names(registry, name):
    Project.objects.get_or_create(name=name.split("/")[0])
    pushed = push_image(registry, name, "v1")
    assert authed.get(f"{registry.url}/v2/_catalog").json() == {"repositories": [name]}
    assert_manifest(get_manifest(registry, name, "v1"), pushed)
    assert authed.get(f"{registry.url}/v2/{name}/tags/list").json() == {
        "name": name,
        "tags": ["v1"],
    }


def test_moving_a_tag(registry):
    first = push_image(registry, NAME, "latest")
    second = push_image(registry, NAME, "latest")
    assert_manifest(get_manifest(registry, NAME, "latest"), second)
    assert_manifest(get_manifest(registry, NAME, first.digest), first)


# --- content negotiation -----------------------------------------------------------------


@pytest.fixture
def docker_image(registry) -> Pushed:
    return push_image(registry, NAME, "v1", media_type=DOCKER_MANIFEST)


def test_accept_without_the_stored_type(registry, docker_image):
    response = get_manifest(registry, NAME, "v1", accept=f"{OCI_MANIFEST}, {OCI_INDEX}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")
    head = authed.head(f"{registry.url}/v2/{NAME}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert head.status_code == 404


def test_accept_on_repeated_header_lines(registry, docker_image):
    response = send(
        registry,
        "GET",
        f"/v2/{NAME}/manifests/v1",
        headers=[
            ("Accept", OCI_MANIFEST),
            ("Accept", f"{DOCKER_MANIFEST}; q=0.9"),
            ("Accept", OCI_INDEX),
        ],
    )
    assert_manifest(response, docker_image)


@pytest.mark.parametrize("accept", ["*/*", "application/*", DOCKER_MANIFEST, None])
def test_accept_wildcards_and_none(registry, docker_image, accept):
    assert_manifest(get_manifest(registry, NAME, "v1", accept=accept), docker_image)


def test_no_accept_header_at_all(registry, docker_image):
    response = send(registry, "GET", f"/v2/{NAME}/manifests/v1")
    assert_manifest(response, docker_image)


@pytest.mark.parametrize(
    ("index_type", "child_type"), [(OCI_INDEX, OCI_MANIFEST), (DOCKER_LIST, DOCKER_MANIFEST)]
)
def test_index_for_a_client_that_only_takes_image_manifests(registry, index_type, child_type):
    index, children = push_index(registry, NAME, "multi", media_type=index_type)
    amd64 = next(c for c in children if c.platform["architecture"] == "amd64")
    assert_manifest(get_manifest(registry, NAME, "multi", accept=child_type), amd64)
    assert_manifest(
        get_manifest(registry, NAME, "multi", accept=f"{child_type}, {index_type}"), index
    )


def test_pull_by_digest_never_serves_other_content(registry):
    """A digest names exactly one document: the platform fallback is for tags only.

    Serving the amd64 child for the index's digest hands the client bytes whose
    digest is not the one it asked for (the reference registry only falls back
    on a tag; by digest it returns the index or MANIFEST_UNKNOWN).
    """
    index, _ = push_index(registry, NAME, "multi")
    for method in ("GET", "HEAD"):
        response = authed.request(
            method,
            f"{registry.url}/v2/{NAME}/manifests/{index.digest}",
            headers={"Accept": OCI_MANIFEST},
        )
        if response.status_code == 200:
            assert_manifest(response, index, head=method == "HEAD")
        elif method == "GET":
            assert_error(response, 404, "MANIFEST_UNKNOWN")
        else:
            assert response.status_code == 404


# --- subject and referrers ------------------------------------------------------------------

SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"


def referrers(registry, digest: str, **params: str) -> requests.Response:
    return authed.get(f"{registry.url}/v2/{NAME}/referrers/{digest}", params=params)


def referrer_descriptor(pushed: Pushed, artifact_type: str, annotations=None) -> dict:
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": pushed.digest,
        "size": len(pushed.body),
        "artifactType": artifact_type,
    }
    if annotations:
        entry["annotations"] = annotations
    return entry


def test_manifest_with_subject_and_referrers(registry):
    image = push_image(registry, NAME, "v1")
    sbom_notes = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    sbom = push_artifact(
        registry, NAME, "sbom", artifact_type=SBOM, subject=image, annotations=sbom_notes
    )
    response = authed.put(
        f"{registry.url}/v2/{NAME}/manifests/sbom-again",
        data=sbom.body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == image.digest
    signature = push_artifact(registry, NAME, "sig", artifact_type=SIGNATURE, subject=image)

    response = referrers(registry, image.digest)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    assert sorted(index["manifests"], key=lambda d: d["digest"]) == sorted(
        [referrer_descriptor(sbom, SBOM, sbom_notes), referrer_descriptor(signature, SIGNATURE)],
        key=lambda d: d["digest"],
    )
    assert "OCI-Filters-Applied" not in response.headers


def test_push_response_names_the_subject(registry):
    image = push_image(registry, NAME, "v1")
    push_blob(registry, NAME, EMPTY_JSON)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM,
            "config": {"mediaType": OCI_EMPTY, "digest": digest_of(EMPTY_JSON), "size": 2},
            "layers": [{"mediaType": OCI_EMPTY, "digest": digest_of(EMPTY_JSON), "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.body)},
        }
    ).encode()
    response = authed.put(
        f"{registry.url}/v2/{NAME}/manifests/sig", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    assert response.headers["OCI-Subject"] == image.digest


def test_referrers_filtered_by_artifact_type(registry):
    image = push_image(registry, NAME, "v1")
    sbom = push_artifact(registry, NAME, "sbom", artifact_type=SBOM, subject=image)
    push_artifact(registry, NAME, "sig", artifact_type=SIGNATURE, subject=image)
    response = referrers(registry, image.digest, artifactType=SBOM)
    assert response.status_code == 200
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert response.json()["manifests"] == [referrer_descriptor(sbom, SBOM)]
    response = referrers(registry, image.digest, artifactType="application/vnd.none")
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert response.json()["manifests"] == []


def test_image_manifest_referrer_reports_its_config_type(registry):
    """Without artifactType, a referrer's artifactType is its config's media type."""
    image = push_image(registry, NAME, "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.body)}
    referrer = push_image(registry, NAME, "ref", subject=subject)
    assert referrers(registry, image.digest).json()["manifests"] == [
        referrer_descriptor(referrer, "application/vnd.oci.image.config.v1+json")
    ]


def test_referrers_are_scoped_to_the_repository_and_go_with_the_referrer(registry):
    image = push_image(registry, NAME, "v1")
    here = push_artifact(registry, NAME, "sbom", artifact_type=SBOM, subject=image)
    push_artifact(registry, "lib/elsewhere", "sbom", artifact_type=SBOM, subject=image)
    assert referrers(registry, image.digest).json()["manifests"] == [
        referrer_descriptor(here, SBOM)
    ]
    authed.delete(f"{registry.url}/v2/{NAME}/manifests/{here.digest}")
    assert referrers(registry, image.digest).json()["manifests"] == []


def test_referrers_of_an_unknown_digest(registry):
    push_image(registry, NAME, "v1")
    response = referrers(registry, digest_of(b"nothing refers to this"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_subject_that_does_not_exist_yet(registry):
    ghost = Pushed(digest_of(b"a manifest pushed later"), b"a manifest pushed later", OCI_MANIFEST)
    artifact = push_artifact(registry, NAME, "early", artifact_type=SBOM, subject=ghost)
    response = authed.head(f"{registry.url}/v2/{NAME}/manifests/early")
    assert response.status_code == 200
    assert referrers(registry, ghost.digest).json()["manifests"] == [
        referrer_descriptor(artifact, SBOM)
    ]


# --- tags and catalog -------------------------------------------------------------------------

TAGS = ["B", "a", "a1", "_x", "1.0", "a.b", "a-b", "A"]


def walk(registry, path: str, key: str, n: int) -> list[list[str]]:
    """Follow `Link: rel=next` from ``path?n=`` to the end; return each page's items."""
    pages, url = [], f"{registry.url}{path}?n={n}"
    while url is not None:
        response = authed.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        pages.append(response.json()[key])
        link = next_link(response)
        url = absolute(registry, link) if link else None
        assert len(pages) <= 20, "pagination does not end"
    return pages


@pytest.fixture
def tagged(registry) -> Pushed:
    pushed = push_image(registry, NAME, TAGS[0])
    for tag in TAGS[1:]:
        response = authed.put(
            f"{registry.url}/v2/{NAME}/manifests/{tag}",
            data=pushed.body,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert response.status_code == 201
    return pushed


def test_tags_list_sorted(registry, tagged):
    response = authed.get(f"{registry.url}/v2/{NAME}/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": NAME, "tags": sorted(TAGS)}
    assert sorted(TAGS) == ["1.0", "A", "B", "_x", "a", "a-b", "a.b", "a1"]
    assert "Link" not in response.headers


def test_tags_list_pagination(registry, tagged):
    response = authed.get(f"{registry.url}/v2/{NAME}/tags/list", params={"n": 2})
    assert response.json() == {"name": NAME, "tags": ["1.0", "A"]}
    assert response.headers["Link"] == f'</v2/{NAME}/tags/list?n=2&last=A>; rel="next"'
    response = authed.get(f"{registry.url}/v2/{NAME}/tags/list", params={"n": 3, "last": "A"})
    assert response.json()["tags"] == ["B", "_x", "a"]
    pages = walk(registry, f"/v2/{NAME}/tags/list", "tags", 3)
    assert pages == [["1.0", "A", "B"], ["_x", "a", "a-b"], ["a.b", "a1"]]
    pages = walk(registry, f"/v2/{NAME}/tags/list", "tags", 4)
    assert [tag for page in pages for tag in page] == sorted(TAGS)


def test_tags_list_last_page_exactly_full(registry, tagged):
    response = authed.get(f"{registry.url}/v2/{NAME}/tags/list", params={"n": len(TAGS)})
    assert response.json()["tags"] == sorted(TAGS)
    assert "Link" not in response.headers


def test_tags_list_n_zero(registry, tagged):
    response = authed.get(f"{registry.url}/v2/{NAME}/tags/list", params={"n": 0})
    assert response.status_code == 200
    assert response.json() == {"name": NAME, "tags": []}
    assert "Link" not in response.headers


def test_tags_list_last_not_a_tag(registry, tagged):
    response = authed.get(f"{registry.url}/v2/{NAME}/tags/list", params={"last": "a0"})
    assert response.json()["tags"] == ["a1"]


REPOSITORIES = ["z9/a", "lib_x/a", "lib/x", "lib.x/a", "libx/a", "lib-x/a", "lib/a", "a/b/c"]


def test_catalog_sorted_and_paginated(registry):
    for name in reversed(REPOSITORIES):
        Project.objects.get_or_create(name=name.split("/")[0])
        push_blob(registry, name, b"catalog")
    expected = sorted(REPOSITORIES)
    # byte order: "-" < "." < "/" < "_" < letters
    assert expected == [
        "a/b/c",
        "lib-x/a",
        "lib.x/a",
        "lib/a",
        "lib/x",
        "lib_x/a",
        "libx/a",
        "z9/a",
    ]
    response = authed.get(f"{registry.url}/v2/_catalog")
    assert response.status_code == 200
    assert response.json() == {"repositories": expected}
    response = authed.get(f"{registry.url}/v2/_catalog", params={"n": 2})
    assert response.json() == {"repositories": ["a/b/c", "lib-x/a"]}
    assert response.headers["Link"] == '</v2/_catalog?n=2&last=lib-x%2Fa>; rel="next"'
    pages = walk(registry, "/v2/_catalog", "repositories", 3)
    assert pages == [expected[0:3], expected[3:6], expected[6:]]
    response = authed.get(f"{registry.url}/v2/_catalog", params={"n": 0})
    assert response.json() == {"repositories": []}
    assert "Link" not in response.headers


def test_catalog_link_with_a_slash_in_last(registry):
    for name in ("a/b", "a/c", "d/x"):
        Project.objects.get_or_create(name=name.split("/")[0])
        push_blob(registry, name, b"catalog")
    response = authed.get(f"{registry.url}/v2/_catalog", params={"n": 1, "last": "a/b"})
    assert response.json() == {"repositories": ["a/c"]}
    assert absolute(registry, next_link(response)).startswith(f"{registry.url}/v2/_catalog?n=1&")
    assert authed.get(absolute(registry, next_link(response))).json() == {"repositories": ["d/x"]}


def test_delete_tag_keeps_the_manifest(registry, tagged):
    response = authed.delete(f"{registry.url}/v2/{NAME}/manifests/a1")
    assert response.status_code == 202
    assert "a1" not in tags_of(registry, NAME)
    assert_error(get_manifest(registry, NAME, "a1"), 404, "MANIFEST_UNKNOWN")
    assert_manifest(get_manifest(registry, NAME, tagged.digest), tagged)
    assert_manifest(get_manifest(registry, NAME, "B"), tagged)


def test_delete_manifest_removes_its_tags(registry, tagged):
    other = push_image(registry, NAME, "other")
    response = authed.delete(f"{registry.url}/v2/{NAME}/manifests/{tagged.digest}")
    assert response.status_code == 202
    assert tags_of(registry, NAME) == ["other"]
    for tag in TAGS:
        assert_error(get_manifest(registry, NAME, tag), 404, "MANIFEST_UNKNOWN")
    assert_manifest(get_manifest(registry, NAME, "other"), other)


def test_index_child_cannot_be_deleted_before_the_index(registry):
    index, children = push_index(registry, NAME, "multi")
    child = children[0]
    response = authed.delete(f"{registry.url}/v2/{NAME}/manifests/{child.digest}")
    error = assert_error(response, 409, "DENIED")
    assert error["detail"]["digest"] == child.digest
    assert_manifest(get_manifest(registry, NAME, child.digest), child)
    assert authed.delete(f"{registry.url}/v2/{NAME}/manifests/multi").status_code == 202
    # The tag is gone, but the index still holds its children.
    assert_error(authed.delete(f"{registry.url}/v2/{NAME}/manifests/{child.digest}"), 409, "DENIED")
    assert authed.delete(f"{registry.url}/v2/{NAME}/manifests/{index.digest}").status_code == 202
    assert authed.delete(f"{registry.url}/v2/{NAME}/manifests/{child.digest}").status_code == 202
    assert_error(get_manifest(registry, NAME, child.digest), 404, "MANIFEST_UNKNOWN")
