"""Bad requests get the spec's status and error code, and leave nothing half-written.

"Nothing half-written" is checked where it would show: blob files and upload
data on disk, upload sessions, manifests and tags in the database the live
server shares with the test.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from distribution.models import Manifest, Repository, Tag, Upload
from projects.models import Project
from tests.distribution.helpers import (
    ADMIN_BASIC,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    MiB,
    Pushed,
    absolute,
    assert_error,
    blob_file,
    blob_files,
    digest_of,
    encode,
    get_manifest,
    make_config,
    make_image_manifest,
    make_index,
    open_partial_request,
    patch_chunk,
    push_blob,
    push_image,
    push_image_blobs,
    push_manifest,
    send,
    start_upload,
    storage_root,
    upload_data_size,
    upload_dirs,
    upload_id_of,
    wait_until,
)
from tests.fixtures import authed

NAME = "lib/app"
MANIFEST_LIMIT = 4 * MiB


@pytest.fixture
def store(registry):
    """A snapshot of what is stored now; ``store.unchanged()`` asserts nothing was added."""

    class Snapshot:
        blobs = blob_files(registry)
        uploads = upload_dirs(registry)
        sessions = set(Upload.objects.values_list("id", flat=True))

        def unchanged(self) -> None:
            assert blob_files(registry) == self.blobs, "a blob file was written"
            assert upload_dirs(registry) == self.uploads, "upload data was left behind"
            assert set(Upload.objects.values_list("id", flat=True)) == self.sessions, (
                "an upload session was left behind"
            )

    return Snapshot()


def assert_no_manifest(registry, name: str, *, tag: str, body: bytes) -> None:
    """Neither the manifest ``body`` nor ``tag`` exists in ``name``."""
    assert not Manifest.objects.filter(repository__name=name).exists()
    assert not Tag.objects.filter(repository__name=name).exists()
    if Repository.objects.filter(name=name).exists():
        assert_error(get_manifest(registry, name, digest_of(body)), 404, "MANIFEST_UNKNOWN")


# --- names --------------------------------------------------------------------------------

BAD_NAMES = {
    "uppercase": "Lib/app",
    "dot-dot segment": "lib/../app",
    "double period": "lib..app",
    "leading slash": "/lib",
    "leading dash": "-lib",
    "leading period": ".lib",
    "trailing separator": "lib_",
    "empty component": "lib//app",
    "256 characters": "a" * 128 + "/" + "b" * 127,
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_invalid_name(registry, store, name):
    assert_error(send(registry, "GET", f"/v2/{name}/tags/list"), 400, "NAME_INVALID")
    data = b"layer"
    response = send(
        registry, "POST", f"/v2/{name}/blobs/uploads/?digest={digest_of(data)}", body=data
    )
    assert_error(response, 400, "NAME_INVALID")
    assert_error(send(registry, "POST", f"/v2/{name}/blobs/uploads/"), 400, "NAME_INVALID")
    response = send(
        registry,
        "PUT",
        f"/v2/{name}/manifests/v1",
        headers=[("Content-Type", OCI_MANIFEST)],
        body=encode(make_image_manifest(b"{}", [])),
    )
    assert_error(response, 400, "NAME_INVALID")
    store.unchanged()
    assert not Repository.objects.exists()


def test_name_of_255_characters_is_valid(registry):
    name = "a" * 127 + "/" + "b" * 127
    assert len(name) == 255
    Project.objects.create(name="a" * 127)
    pushed = push_image(registry, name, "v1")
    assert authed.get(f"{registry.url}/v2/_catalog").json() == {"repositories": [name]}
    assert get_manifest(registry, name, "v1").content == pushed.body


def test_unknown_repository(registry):
    response = authed.get(f"{registry.url}/v2/no/such/repo/tags/list")
    error = assert_error(response, 404, "NAME_UNKNOWN")
    assert error["detail"] == {"name": "no/such/repo"}
    assert_error(get_manifest(registry, "no/such/repo", "v1"), 404, "NAME_UNKNOWN")


# --- digests ------------------------------------------------------------------------------

BAD_DIGESTS = {
    "not hex": "sha256:xyz",
    "md5": "md5:" + "a" * 32,
    "63 hex digits": "sha256:" + "a" * 63,
    "uppercase hex": "sha256:" + "A" * 64,
    "no encoded part": "sha256:",
    "no algorithm": ":" + "a" * 64,
}


@pytest.mark.parametrize("digest", BAD_DIGESTS.values(), ids=BAD_DIGESTS.keys())
def test_malformed_digest_on_blob_reads(registry, digest):
    push_blob(registry, NAME, b"some blob")
    response = authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest}")
    assert_error(response, 400, "DIGEST_INVALID")
    assert authed.head(f"{registry.url}/v2/{NAME}/blobs/{digest}").status_code == 400
    assert_error(authed.delete(f"{registry.url}/v2/{NAME}/blobs/{digest}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", [d for d in BAD_DIGESTS.values() if d != "sha256:"])
def test_malformed_digest_as_manifest_reference(registry, digest):
    pushed = push_image(registry, NAME, "v1")
    assert_error(get_manifest(registry, NAME, digest), 400, "DIGEST_INVALID")
    assert authed.head(f"{registry.url}/v2/{NAME}/manifests/{digest}").status_code == 400
    response = authed.delete(f"{registry.url}/v2/{NAME}/manifests/{digest}")
    assert_error(response, 400, "DIGEST_INVALID")
    response = push_manifest(registry, NAME, digest, pushed.body, OCI_MANIFEST)
    assert_error(response, 400, "DIGEST_INVALID")
    assert Manifest.objects.count() == 1
    response = authed.get(f"{registry.url}/v2/{NAME}/referrers/{digest}")
    assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", BAD_DIGESTS.values(), ids=BAD_DIGESTS.keys())
def test_malformed_digest_completing_an_upload(registry, digest):
    location = start_upload(registry, NAME)
    assert patch_chunk(location, b"0123456789", 0).status_code == 202
    files = blob_files(registry)
    response = authed.put(location, params={"digest": digest}, data=b"abc")
    assert_error(response, 400, "DIGEST_INVALID")
    assert blob_files(registry) == files
    # The session is untouched and still usable.
    status = authed.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-9"
    assert upload_data_size(registry, upload_id_of(location)) == 10
    response = authed.put(location, params={"digest": digest_of(b"0123456789")})
    assert response.status_code == 201


@pytest.mark.parametrize("digest", BAD_DIGESTS.values(), ids=BAD_DIGESTS.keys())
def test_malformed_digest_in_monolithic_post(registry, store, digest):
    response = authed.post(
        f"{registry.url}/v2/{NAME}/blobs/uploads/", params={"digest": digest}, data=b"abc"
    )
    assert_error(response, 400, "DIGEST_INVALID")
    store.unchanged()


@pytest.mark.parametrize("digest", BAD_DIGESTS.values(), ids=BAD_DIGESTS.keys())
def test_malformed_digest_in_mount(registry, store, digest):
    push_blob(registry, "lib/a", b"mountable")
    store.blobs = blob_files(registry)
    response = authed.post(
        f"{registry.url}/v2/lib/b/blobs/uploads/", params={"mount": digest, "from": "lib/a"}
    )
    assert_error(response, 400, "DIGEST_INVALID")
    store.unchanged()
    assert not Repository.objects.filter(name="lib/b").exists()


def test_invalid_mount_source(registry, store):
    digest = push_blob(registry, "lib/a", b"mountable")
    store.blobs = blob_files(registry)
    response = authed.post(
        f"{registry.url}/v2/lib/b/blobs/uploads/", params={"mount": digest, "from": "A/../a"}
    )
    assert_error(response, 400, "NAME_INVALID")
    store.unchanged()


# --- digest mismatch --------------------------------------------------------------------


def assert_not_stored(registry, *digests: str) -> None:
    for digest in digests:
        assert authed.head(f"{registry.url}/v2/{NAME}/blobs/{digest}").status_code == 404
        assert not blob_file(registry, digest).exists()


@pytest.mark.parametrize("how", ["patch then empty put", "body in put", "sha512 digest"])
def test_digest_mismatch_on_completion(registry, store, how):
    data, claimed = os.urandom(5000), os.urandom(5000)
    claimed_digest = digest_of(claimed, "sha512" if how == "sha512 digest" else "sha256")
    location = start_upload(registry, NAME)
    if how == "body in put":
        response = authed.put(location, params={"digest": claimed_digest}, data=data)
    else:
        assert patch_chunk(location, data, 0).status_code == 202
        response = authed.put(location, params={"digest": claimed_digest})
    error = assert_error(response, 400, "DIGEST_INVALID")
    assert error["detail"]["digest"] == claimed_digest
    assert_not_stored(registry, claimed_digest, digest_of(data))
    assert_error(authed.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    store.unchanged()


def test_digest_mismatch_in_monolithic_post(registry, store):
    data = os.urandom(5000)
    claimed = digest_of(os.urandom(5000))
    response = authed.post(
        f"{registry.url}/v2/{NAME}/blobs/uploads/", params={"digest": claimed}, data=data
    )
    assert_error(response, 400, "DIGEST_INVALID")
    assert_not_stored(registry, claimed, digest_of(data))
    store.unchanged()


def test_post_with_a_body_but_no_digest(registry, store):
    response = authed.post(f"{registry.url}/v2/{NAME}/blobs/uploads/", data=b"abc")
    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    store.unchanged()


# --- ranges and sizes -----------------------------------------------------------------------


def test_out_of_order_chunk(registry):
    data = os.urandom(30)
    location = start_upload(registry, NAME)
    upload_id = upload_id_of(location)
    assert patch_chunk(location, data[:10], 0).status_code == 202
    for start, piece in ((20, data[20:]), (0, data[:10]), (5, data[5:15])):
        response = patch_chunk(location, piece, start)
        assert_error(response, 416, "BLOB_UPLOAD_INVALID")
        assert response.headers["Range"] == "0-9"
        assert absolute(registry, response.headers["Location"]) == location
        assert response.headers["Docker-Upload-UUID"] == upload_id
        assert upload_data_size(registry, upload_id) == 10
    response = patch_chunk(location, data[10:20], 10)
    assert response.status_code == 202
    assert response.headers["Range"] == "0-19"
    response = authed.put(
        location,
        params={"digest": digest_of(data)},
        data=data[20:],
        headers={"Content-Range": "20-29"},
    )
    assert response.status_code == 201, response.text
    assert authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest_of(data)}").content == data


def test_out_of_order_final_chunk(registry):
    location = start_upload(registry, NAME)
    assert patch_chunk(location, b"0123456789", 0).status_code == 202
    response = authed.put(
        location,
        params={"digest": digest_of(b"0123456789abc")},
        data=b"abc",
        headers={"Content-Range": "11-13"},
    )
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response.headers["Range"] == "0-9"
    assert authed.get(location).headers["Range"] == "0-9"


def test_content_range_disagrees_with_content_length(registry):
    location = start_upload(registry, NAME)
    assert patch_chunk(location, b"0123456789", 0).status_code == 202
    response = authed.patch(location, data=b"abcde", headers={"Content-Range": "10-29"})
    assert_error(response, 400, "SIZE_INVALID")
    assert authed.get(location).headers["Range"] == "0-9"
    assert upload_data_size(registry, upload_id_of(location)) == 10


@pytest.mark.parametrize("value", ["abc", "5-2", "-3", "bytes=0-9"])
def test_malformed_content_range(registry, value):
    location = start_upload(registry, NAME)
    response = authed.patch(location, data=b"0123456789", headers={"Content-Range": value})
    assert response.status_code == 416, response.text
    assert response.headers["Range"] == "0-0"
    assert upload_data_size(registry, upload_id_of(location)) is None


# --- unknown uploads ----------------------------------------------------------------------


@pytest.mark.parametrize("upload_id", [str(uuid.uuid4()), "not-an-upload"])
@pytest.mark.parametrize("method", ["PATCH", "PUT", "GET", "DELETE"])
def test_unknown_upload(registry, store, upload_id, method):
    push_blob(registry, NAME, b"exists")
    store.blobs = blob_files(registry)
    data = os.urandom(10)
    response = authed.request(
        method,
        f"{registry.url}/v2/{NAME}/blobs/uploads/{upload_id}",
        params={"digest": digest_of(data)} if method == "PUT" else None,
        data=data if method in ("PATCH", "PUT") else None,
    )
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    store.unchanged()
    assert not blob_file(registry, digest_of(data)).exists()


def test_upload_of_another_repository(registry):
    location = start_upload(registry, "lib/a")
    upload_id = upload_id_of(location)
    assert patch_chunk(location, b"first", 0).status_code == 202
    foreign = f"{registry.url}/v2/lib/b/blobs/uploads/{upload_id}"
    data = b"firstsecond"
    assert_error(patch_chunk(foreign, b"second", 5), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(authed.get(foreign), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(
        authed.put(foreign, params={"digest": digest_of(b"first")}), 404, "BLOB_UPLOAD_UNKNOWN"
    )
    assert_error(authed.delete(foreign), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not Repository.objects.filter(name="lib/b").exists()
    assert upload_data_size(registry, upload_id) == 5
    assert patch_chunk(location, b"second", 5).status_code == 202
    assert authed.put(location, params={"digest": digest_of(data)}).status_code == 201
    assert authed.get(f"{registry.url}/v2/lib/a/blobs/{digest_of(data)}").content == data


# --- manifests ----------------------------------------------------------------------------


@pytest.fixture
def blobs(registry) -> tuple[bytes, list[bytes]]:
    """Config and two layers pushed to NAME."""
    return push_image_blobs(registry, NAME)


def assert_refused(registry, response, status: int, code: str, body: bytes) -> dict:
    error = assert_error(response, status, code)
    assert_no_manifest(registry, NAME, tag="v1", body=body)
    return error


def test_manifest_with_missing_blobs(registry, blobs):
    config, layers = blobs
    missing = [os.urandom(64), os.urandom(65)]
    body = encode(make_image_manifest(config, [layers[0], *missing]))
    response = push_manifest(registry, NAME, "v1", body, OCI_MANIFEST)
    error = assert_refused(registry, response, 400, "MANIFEST_BLOB_UNKNOWN", body)
    assert sorted(error["detail"]["digests"]) == sorted(digest_of(m) for m in missing)


def test_manifest_with_missing_blobs_creates_no_repository(registry):
    config, layers = make_config(), [os.urandom(10)]
    body = encode(make_image_manifest(config, layers))
    response = push_manifest(registry, "lib/fresh", "v1", body, OCI_MANIFEST)
    error = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert sorted(error["detail"]["digests"]) == sorted(digest_of(b) for b in [config, *layers])
    assert authed.get(f"{registry.url}/v2/_catalog").json() == {"repositories": []}
    assert_error(authed.get(f"{registry.url}/v2/lib/fresh/tags/list"), 404, "NAME_UNKNOWN")


def test_manifest_with_missing_config(registry, blobs):
    _, layers = blobs
    config = make_config()
    body = encode(make_image_manifest(config, layers, media_type=DOCKER_MANIFEST))
    response = push_manifest(registry, NAME, "v1", body, DOCKER_MANIFEST)
    error = assert_refused(registry, response, 400, "MANIFEST_BLOB_UNKNOWN", body)
    assert error["detail"]["digests"] == [digest_of(config)]


def test_manifest_with_blobs_of_another_repository(registry, blobs):
    config, layers = blobs
    push_blob(registry, "lib/other", b"other")
    body = encode(make_image_manifest(config, layers))
    response = push_manifest(registry, "lib/other", "v1", body, OCI_MANIFEST)
    error = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert len(error["detail"]["digests"]) == 3
    assert not Manifest.objects.exists()


def test_index_with_missing_child(registry, blobs):
    present = push_image(registry, NAME, "child")
    ghost = Pushed(digest_of(b"ghost"), b"ghost", OCI_MANIFEST, platform={"os": "linux"})
    body = encode(make_index([present, ghost]))
    response = push_manifest(registry, NAME, "v1", body, OCI_INDEX)
    error = assert_error(response, 400, "MANIFEST_UNKNOWN")
    assert error["detail"]["digests"] == [ghost.digest]
    assert list(Manifest.objects.values_list("digest", flat=True)) == [present.digest]
    assert list(Tag.objects.values_list("name", flat=True)) == ["child"]


def test_descriptor_size_disagrees_with_blob(registry, blobs):
    config, layers = blobs
    document = make_image_manifest(config, layers)
    document["layers"][1]["size"] += 1
    body = encode(document)
    response = push_manifest(registry, NAME, "v1", body, OCI_MANIFEST)
    assert_refused(registry, response, 400, "MANIFEST_INVALID", body)


def invalid_manifests(config: bytes, layers: list[bytes]) -> dict[str, tuple[str | None, bytes]]:
    """Bodies the registry must refuse as MANIFEST_INVALID, with their Content-Type."""
    good = make_image_manifest(config, layers)
    no_layers = {k: v for k, v in good.items() if k != "layers"}
    negative = json.loads(json.dumps(good))
    negative["layers"][0]["size"] = -1
    schema1 = {"schemaVersion": 1, "name": NAME, "tag": "v1", "fsLayers": [], "history": []}
    return {
        "malformed JSON": (OCI_MANIFEST, encode(good)[:-1]),
        "not UTF-8": (OCI_MANIFEST, b'{"schemaVersion": 2, "x": "\xff"}'),
        "JSON array": (OCI_MANIFEST, b"[]"),
        "JSON string": (OCI_MANIFEST, b'"manifest"'),
        "empty body": (OCI_MANIFEST, b""),
        "schemaVersion 1": (OCI_MANIFEST, encode({**good, "schemaVersion": 1})),
        "schemaVersion missing": (
            OCI_MANIFEST,
            encode({k: v for k, v in good.items() if k != "schemaVersion"}),
        ),
        "schema1 content type": (DOCKER_SCHEMA1, encode(schema1)),
        "schema1 media type": (None, encode({**schema1, "mediaType": DOCKER_SCHEMA1})),
        "content type disagrees": (DOCKER_MANIFEST, encode(good)),
        "unknown media type": (
            "application/vnd.example+json",
            encode({k: v for k, v in good.items() if k != "mediaType"}),
        ),
        "missing layers": (OCI_MANIFEST, encode(no_layers)),
        "negative size": (OCI_MANIFEST, encode(negative)),
        "bad descriptor digest": (
            OCI_MANIFEST,
            encode({**good, "config": {**good["config"], "digest": "sha256:xyz"}}),
        ),
        "index without manifests": (
            OCI_INDEX,
            encode({"schemaVersion": 2, "mediaType": OCI_INDEX}),
        ),
        "config not an object": (OCI_MANIFEST, encode({**good, "config": "sha256:abc"})),
        "layer without digest": (
            OCI_MANIFEST,
            encode({**good, "layers": [{"mediaType": OCI_LAYER, "size": 1}]}),
        ),
        "size not an integer": (
            OCI_MANIFEST,
            encode({**good, "config": {**good["config"], "size": "2"}}),
        ),
        "subject not a descriptor": (OCI_MANIFEST, encode({**good, "subject": "sha256:abc"})),
        "annotation not a string": (OCI_MANIFEST, encode({**good, "annotations": {"a": 1}})),
        "artifactType not a string": (OCI_MANIFEST, encode({**good, "artifactType": 7})),
    }


INVALID_CASES = list(invalid_manifests(b"{}", [b""]))


@pytest.mark.parametrize("case", INVALID_CASES)
def test_invalid_manifest(registry, blobs, case):
    content_type, body = invalid_manifests(*blobs)[case]
    response = push_manifest(registry, NAME, "v1", body, content_type)
    assert_refused(registry, response, 400, "MANIFEST_INVALID", body)


def test_put_by_digest_that_does_not_match(registry, blobs):
    body = encode(make_image_manifest(*blobs))
    other = digest_of(body + b" ")
    response = push_manifest(registry, NAME, other, body, OCI_MANIFEST)
    assert_refused(registry, response, 400, "DIGEST_INVALID", body)
    assert_error(get_manifest(registry, NAME, other), 404, "MANIFEST_UNKNOWN")


def padded_manifest(config: bytes, layers: list[bytes], size: int) -> bytes:
    """A valid manifest of exactly ``size`` bytes (padded in an annotation)."""
    document = make_image_manifest(config, layers, annotations={"pad": ""})
    document["annotations"]["pad"] = "x" * (size - len(encode(document)))
    body = encode(document)
    assert len(body) == size
    return body


def test_manifest_at_the_size_limit(registry, blobs):
    body = padded_manifest(*blobs, MANIFEST_LIMIT)
    response = push_manifest(registry, NAME, "v1", body, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert get_manifest(registry, NAME, "v1").content == body


def test_manifest_over_the_size_limit(registry, blobs):
    body = padded_manifest(*blobs, MANIFEST_LIMIT + 1)
    response = push_manifest(registry, NAME, "v1", body, OCI_MANIFEST)
    assert_refused(registry, response, 413, "MANIFEST_INVALID", body)


def test_chunked_manifest_over_the_size_limit(registry, blobs):
    body = padded_manifest(*blobs, MANIFEST_LIMIT + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 256 << 10):
            yield body[start : start + (256 << 10)]

    response = send(
        registry,
        "PUT",
        f"/v2/{NAME}/manifests/v1",
        headers=[("Content-Type", OCI_MANIFEST)],
        body=chunks(),
    )
    assert_refused(registry, response, 413, "MANIFEST_INVALID", body)


def test_chunked_manifest_within_the_limit(registry, blobs):
    body = encode(make_image_manifest(*blobs))
    response = send(
        registry,
        "PUT",
        f"/v2/{NAME}/manifests/v1",
        headers=[("Content-Type", OCI_MANIFEST)],
        body=iter([body[:10], body[10:]]),
    )
    assert response.status_code == 201, response.text
    assert get_manifest(registry, NAME, "v1").content == body


# --- tags ---------------------------------------------------------------------------------

BAD_TAGS = {
    "leading dash": "-lead",
    "leading period": ".lead",
    "129 chars": "t" * 129,
    "plus": "tag+plus",
    "percent": "tag%25",
}


@pytest.mark.parametrize("tag", BAD_TAGS.values(), ids=BAD_TAGS.keys())
def test_invalid_tag(registry, blobs, tag):
    body = encode(make_image_manifest(*blobs))
    response = push_manifest(registry, NAME, tag, body, OCI_MANIFEST)
    assert_refused(registry, response, 400, "TAG_INVALID", body)
    assert_error(get_manifest(registry, NAME, tag), 400, "TAG_INVALID")
    assert authed.head(f"{registry.url}/v2/{NAME}/manifests/{tag}").status_code == 400
    response = authed.delete(f"{registry.url}/v2/{NAME}/manifests/{tag}")
    assert_error(response, 400, "TAG_INVALID")


def test_tag_of_128_characters_is_valid(registry, blobs):
    tag = "_" + "T.-9" * 31 + "abc"
    assert len(tag) == 128
    body = encode(make_image_manifest(*blobs))
    assert push_manifest(registry, NAME, tag, body, OCI_MANIFEST).status_code == 201
    assert get_manifest(registry, NAME, tag).content == body


# --- pagination ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "0x10"])
def test_invalid_page_size(registry, n):
    push_image(registry, NAME, "v1")
    for path in (f"/v2/{NAME}/tags/list", "/v2/_catalog"):
        response = authed.get(f"{registry.url}{path}", params={"n": n})
        assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


def test_huge_page_size_is_capped(registry):
    pushed = push_image(registry, NAME, "v1")
    manifest = Manifest.objects.get(digest=pushed.digest)
    tags = [f"t{i:04d}" for i in range(1001)]
    Tag.objects.bulk_create(
        Tag(repository=manifest.repository, name=tag, manifest=manifest) for tag in tags
    )
    url = f"{registry.url}/v2/{NAME}/tags/list"
    response = authed.get(url, params={"n": 10**9})
    assert response.status_code == 200
    assert response.json()["tags"] == tags[:1000]
    assert response.headers["Link"] == f'</v2/{NAME}/tags/list?n=1000&last=t0999>; rel="next"'
    rest = authed.get(absolute(registry, response.headers["Link"][1:].split(">")[0]))
    assert rest.json()["tags"] == ["t1000", "v1"]


def test_huge_page_size_on_the_catalog(registry):
    project = Project.objects.get(name="lib")
    names = [f"lib/r{i:04d}" for i in range(1001)]
    Repository.objects.bulk_create(Repository(name=name, project=project) for name in names)
    response = authed.get(f"{registry.url}/v2/_catalog", params={"n": 10**9})
    assert response.status_code == 200
    assert response.json()["repositories"] == names[:1000]
    assert response.headers["Link"] == '</v2/_catalog?n=1000&last=lib%2Fr0999>; rel="next"'


@pytest.mark.parametrize("last", ["%%%", "x" * 300, "-x"])
def test_junk_last(registry, last):
    push_image(registry, NAME, "v1")
    response = authed.get(f"{registry.url}/v2/{NAME}/tags/list", params={"last": last})
    assert_error(response, 400, "TAG_INVALID")
    response = authed.get(f"{registry.url}/v2/_catalog", params={"last": last})
    assert_error(response, 400, "NAME_INVALID")


# --- clients that go away -----------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_client_disconnects_mid_patch(registry, framing):
    first, rest = os.urandom(MiB), os.urandom(2 * MiB)
    location = start_upload(registry, NAME)
    upload_id = upload_id_of(location)
    assert patch_chunk(location, first, 0).status_code == 202
    sock = open_partial_request(
        registry,
        "PATCH",
        location.removeprefix(registry.url),
        body=os.urandom(MiB),
        declared=10 * MiB if framing == "content-length" else None,
    )
    try:
        # Close only once the server is writing the piece, so the close breaks a live body.
        assert wait_until(lambda: upload_data_size(registry, upload_id) == 2 * MiB)
    finally:
        sock.close()
    assert wait_until(
        lambda: (
            upload_data_size(registry, upload_id) == MiB
            and Upload.objects.get(pk=upload_id).busy_since is None
        )
    ), "the broken piece was kept"
    status = authed.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == f"0-{MiB - 1}"
    response = patch_chunk(location, rest, MiB)
    assert response.status_code == 202, response.text
    data = first + rest
    response = authed.put(location, params={"digest": digest_of(data)})
    assert response.status_code == 201, response.text
    assert authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest_of(data)}").content == data


def test_client_disconnects_mid_monolithic_post(registry, store):
    data = os.urandom(10 * MiB)
    digest = digest_of(data)
    path = f"/v2/{NAME}/blobs/uploads/?digest={digest}"
    sock = open_partial_request(registry, "POST", path, body=data[:MiB], declared=len(data))

    def writing() -> set[str]:
        return {
            u for u in upload_dirs(registry) - store.uploads if upload_data_size(registry, u) == MiB
        }

    try:
        assert wait_until(lambda: bool(writing()))
    finally:
        sock.close()
    assert wait_until(lambda: not writing()), "the broken body was kept"
    assert_not_stored(registry, digest)
    assert wait_until(
        lambda: upload_dirs(registry) == store.uploads and not Upload.objects.exists()
    ), (
        f"the failed monolithic upload left its session behind: "
        f"rows {list(Upload.objects.values_list('id', 'size'))}, "
        f"dirs {upload_dirs(registry) - store.uploads}"
    )


# --- methods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/v2/{NAME}/manifests/v1"),
        ("PATCH", f"/v2/{NAME}/manifests/v1"),
        ("PUT", f"/v2/{NAME}/blobs/{digest_of(b'x')}"),
        ("POST", f"/v2/{NAME}/tags/list"),
        ("DELETE", "/v2/_catalog"),
        ("PUT", "/v2/"),
    ],
)
def test_unsupported_method(registry, method, path):
    response = authed.request(method, f"{registry.url}{path}", data=b"{}")
    assert_error(response, 405, "UNSUPPORTED")
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unsupported_method_lists_the_allowed_ones(registry):
    """RFC 9110 §15.5.6: a 405 response MUST carry Allow."""
    response = authed.post(f"{registry.url}/v2/{NAME}/manifests/v1", data=b"{}")
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers.get("Allow", "").split(",")}
    assert allowed >= {"GET", "HEAD", "PUT", "DELETE"}, response.headers


@pytest.mark.parametrize("path", ["/v2/lib/app/nonsense", "/v2/lib/app/blobs", "/v2/_catalogue"])
def test_unknown_endpoints_answer_in_json(registry, path):
    assert_error(authed.get(f"{registry.url}{path}"), 404, "UNSUPPORTED")


def test_bodiless_answers_claim_no_content_type(registry):
    response = authed.post(f"{registry.url}/v2/{NAME}/blobs/uploads/")
    assert response.status_code == 202
    assert "Content-Type" not in response.headers
    assert response.headers["Content-Length"] == "0"


@pytest.mark.django_db
def test_a_broken_storage_backend_gives_a_json_500(settings, caplog, admin_client):
    """A store that cannot be reached is a server fault, answered with the spec's JSON."""
    Project.objects.get_or_create(name=NAME.split("/")[0])
    settings.HARBORPY_STORAGE = (
        "s3://nowhere/x?endpoint=http://127.0.0.1:9&access_key=k&secret_key=s&region=us-east-1"
    )
    data = os.urandom(64)
    response = admin_client.post(
        f"/v2/{NAME}/blobs/uploads/?digest={digest_of(data)}",
        data=data,
        content_type="application/octet-stream",
    )
    assert response.status_code == 500
    error = response.json()["errors"][0]
    assert error["code"] == "UNKNOWN"
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"
    assert Upload.objects.count() == 0, "the failed upload left no session"


def test_an_abandoned_upload_expires(registry, settings):
    location = start_upload(registry, NAME)
    upload_id = upload_id_of(location)
    assert patch_chunk(location, os.urandom(1000), 0).status_code == 202
    long_ago = timezone.now() - timedelta(seconds=settings.HARBORPY_UPLOAD_EXPIRY + 60)
    Upload.objects.filter(pk=upload_id).update(updated_at=long_ago)

    response = patch_chunk(location, os.urandom(10), 1000)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert not Upload.objects.filter(pk=upload_id).exists()
    assert upload_data_size(registry, upload_id) is None


def test_an_upload_whose_bytes_vanished_from_storage_must_start_again(registry):
    data = os.urandom(2000)
    location = start_upload(registry, NAME)
    upload_id = upload_id_of(location)
    location = patch_chunk(location, data, 0).headers["Location"]
    shutil.rmtree(storage_root(registry) / "uploads" / upload_id)

    response = authed.put(absolute(registry, location), params={"digest": digest_of(data)})

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert not Upload.objects.filter(pk=upload_id).exists()
    assert not blob_file(registry, digest_of(data)).exists()


def test_a_keep_alive_connection_stays_in_step_after_refused_bodies(registry):
    """Bodies refused before or after being read never leak into the next request.

    (gunicorn drains up to 64 KiB of an unread body and closes the connection
    beyond that, so the pieces here are small enough for the connection to live.)
    """
    import http.client

    host, port = registry.host.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(method, path, body=None, headers=None):
        headers = {"Authorization": ADMIN_BASIC, **(headers or {})}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        assert not response.will_close
        return response

    location = call("POST", f"/v2/{NAME}/blobs/uploads/").getheader("Location")
    piece = os.urandom(16 * 1024)
    # refused before the body is read: wrong start offset
    response = call("PATCH", location, piece, {"Content-Range": f"5-{5 + len(piece) - 1}"})
    assert response.status == 416
    # refused after the body is read: digest mismatch
    response = call("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest_of(b'x')}", piece)
    assert response.status == 400
    # the connection still serves requests in step
    response = call("PATCH", location, piece, {"Content-Range": f"0-{len(piece) - 1}"})
    assert response.status == 202 and response.getheader("Range") == f"0-{len(piece) - 1}"
    response = call("PUT", f"{location}?digest={digest_of(piece)}")
    assert response.status == 201
    connection.request("GET", "/v2/", headers={"Authorization": ADMIN_BASIC})
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"{}")
    connection.close()


def test_a_writer_that_took_over_a_dead_claim_does_not_trust_its_digest(registry):
    first, second = os.urandom(4000), os.urandom(3000)
    location = start_upload(registry, NAME)
    upload_id = upload_id_of(location)
    assert patch_chunk(location, first, 0).status_code == 202
    # A writer that died mid-piece: its claim is stale and its digest is not to be believed.
    long_ago = timezone.now() - timedelta(hours=1)
    Upload.objects.filter(pk=upload_id).update(
        busy_since=long_ago, claim="dead", digest=digest_of(b"what the dead writer claimed")
    )

    response = patch_chunk(location, second, len(first))

    assert response.status_code == 202, response.text
    upload = Upload.objects.get(pk=upload_id)
    assert (upload.size, upload.digest, upload.busy_since, upload.claim) == (7000, "", None, "")
    done = authed.put(location, params={"digest": digest_of(first + second)})
    assert done.status_code == 201, done.text
    blob = authed.get(f"{registry.url}/v2/{NAME}/blobs/{digest_of(first + second)}")
    assert blob.content == first + second
