"""Real clients (skopeo, podman, docker) against the registry under test (`registry_host`).

The images come from tests/fixtures/images.py, so every digest is known in advance: a pushed
OCI manifest or index must come back byte for byte, and pulled images must have the image ID
(config digest) the generator wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fixtures.clients import (
    Cli,
    CommandError,
    SampleImages,
    skopeo,
    skopeo_json,
    skopeo_run,
)
from tests.fixtures.images import (
    MT_DOCKER_LAYER_GZIP,
    MT_DOCKER_MANIFEST,
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    blob_path,
    file_digest,
    sha256_digest,
)

pytestmark = pytest.mark.clients

NO_TLS = "--tls-verify=false"


def raw_manifest(ref: str) -> bytes:
    """The manifest bytes the registry serves for docker://ref (tag or @digest)."""
    return skopeo("inspect", NO_TLS, "--raw", f"docker://{ref}").encode()


def list_tags(registry_host: str, repo: str) -> list[str]:
    out = skopeo_json("list-tags", NO_TLS, f"docker://{registry_host}/{repo}")
    assert out["Repository"] == f"{registry_host}/{repo}"
    return sorted(out["Tags"])


def push_oci(sample: SampleImages, tag: str, ref: str, *extra: str) -> None:
    """skopeo copy [extra] oci:LAYOUT:tag docker://ref"""
    skopeo("copy", "--dest-tls-verify=false", *extra, sample.oci(tag), f"docker://{ref}")


@pytest.fixture(scope="session")
def pushed_single(registry_host: str, sample_images: SampleImages) -> str:
    """`single` pushed by skopeo from the OCI layout as test/single:1; returns the reference."""
    ref = f"{registry_host}/test/single:1"
    push_oci(sample_images, "single", ref)
    return ref


@pytest.fixture(scope="session")
def pushed_multi(registry_host: str, sample_images: SampleImages) -> str:
    """The `multi` index pushed whole (`--all`) by skopeo as test/multi:m."""
    ref = f"{registry_host}/test/multi:m"
    push_oci(sample_images, "multi", ref, "--all")
    return ref


# --- skopeo -------------------------------------------------------------------------------------


def test_skopeo_push_oci_manifest(pushed_single: str, sample_images: SampleImages) -> None:
    info = sample_images.single
    raw = raw_manifest(pushed_single)
    assert raw == blob_path(sample_images.layout, info.digest).read_bytes()
    assert sha256_digest(raw) == info.digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == MT_OCI_MANIFEST
    assert manifest["config"]["digest"] == info.config_digest
    assert [layer["digest"] for layer in manifest["layers"]] == info.layers

    inspected = skopeo_json("inspect", NO_TLS, f"docker://{pushed_single}")
    assert inspected["Digest"] == info.digest
    assert inspected["Layers"] == info.layers
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")
    # by digest too
    assert raw_manifest(pushed_single.rsplit(":", 1)[0] + "@" + info.digest) == raw


def test_skopeo_push_docker_schema2(registry_host: str, sample_images: SampleImages) -> None:
    info = sample_images.single
    ref = f"{registry_host}/test/v2s2:1"
    push_oci(sample_images, "single", ref, "--format", "v2s2")
    raw = raw_manifest(ref)
    manifest = json.loads(raw)
    assert manifest["mediaType"] == MT_DOCKER_MANIFEST
    assert manifest["schemaVersion"] == 2
    # Conversion rewrites the manifest, not the blobs: same config and (gzip) layer digests.
    assert manifest["config"]["digest"] == info.config_digest
    assert [layer["digest"] for layer in manifest["layers"]] == info.layers
    assert {layer["mediaType"] for layer in manifest["layers"]} == {MT_DOCKER_LAYER_GZIP}
    inspected = skopeo_json("inspect", NO_TLS, f"docker://{ref}")
    assert inspected["Digest"] == sha256_digest(raw) != info.digest


def test_skopeo_push_multiarch_index(pushed_multi: str, sample_images: SampleImages) -> None:
    info = sample_images.multi
    raw = raw_manifest(pushed_multi)
    assert raw == blob_path(sample_images.layout, info.digest).read_bytes()
    index = json.loads(raw)
    assert index["mediaType"] == MT_OCI_INDEX
    assert [m["digest"] for m in index["manifests"]] == info.child_digests
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    repo = pushed_multi.rsplit(":", 1)[0]
    for child in info.children:
        child_raw = raw_manifest(f"{repo}@{child.digest}")
        assert sha256_digest(child_raw) == child.digest
        assert json.loads(child_raw)["config"]["digest"] == child.config_digest
    # skopeo resolves the index to this machine's platform (linux/amd64) unless told otherwise
    inspected = skopeo_json(
        "inspect", NO_TLS, "--override-arch", "arm64", f"docker://{pushed_multi}"
    )
    assert inspected["Layers"] == info.child("arm64").layers


def test_skopeo_pull_to_dir(
    pushed_single: str, sample_images: SampleImages, tmp_path: Path
) -> None:
    info = sample_images.single
    out = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", f"docker://{pushed_single}", f"dir:{out}")
    assert file_digest(out / "manifest.json") == info.digest
    for digest in info.blobs:  # config + layers, stored by hex
        path = out / digest.split(":", 1)[1]
        assert path.is_file(), sorted(p.name for p in out.iterdir())
        assert file_digest(path) == digest
    # the layers are the generator's gzip tars, byte for byte
    for digest in info.layers:
        assert (out / digest.split(":", 1)[1]).read_bytes() == blob_path(
            sample_images.layout, digest
        ).read_bytes()


def test_skopeo_copy_between_repositories_mounts(
    pushed_single: str, registry_host: str, sample_images: SampleImages
) -> None:
    info = sample_images.single
    dest = f"{registry_host}/test/single-copy:1"
    log = skopeo_run(
        "--debug",
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{pushed_single}",
        f"docker://{dest}",
    ).stderr
    # skopeo's blob-info cache knows the layers are in test/single (and any repository it pushed
    # them to since): it HEADs the blob there, then
    # POST /v2/test/single-copy/blobs/uploads/?from=test%2Fsingle&mount=sha256%3A... -> 201.
    # The config is not mounted: GET from the source, then uploaded.
    for digest in info.layers:
        mount = re.escape("&mount=" + digest.replace(":", "%3A"))
        assert re.search(rf"POST \S+/v2/test/single-copy/blobs/uploads/\?from=\S+{mount}", log), log
    assert log.count("... mount OK") == len(info.layers), log
    assert sha256_digest(raw_manifest(dest)) == info.digest
    assert list_tags(registry_host, "test/single-copy") == ["1"]


def test_skopeo_list_tags(registry_host: str, sample_images: SampleImages) -> None:
    for tag in ("b", "a", "1.0"):
        push_oci(sample_images, "single", f"{registry_host}/test/tags:{tag}")
    assert list_tags(registry_host, "test/tags") == ["1.0", "a", "b"]


def test_skopeo_delete(registry_host: str, sample_images: SampleImages) -> None:
    repo = f"{registry_host}/test/delete"
    push_oci(sample_images, "single", f"{repo}:gone")
    push_oci(sample_images, "single", f"{repo}:kept", "--format", "v2s2")  # another manifest
    assert list_tags(registry_host, "test/delete") == ["gone", "kept"]

    skopeo("delete", NO_TLS, f"docker://{repo}:gone")
    with pytest.raises(CommandError) as failed:
        raw_manifest(f"{repo}:gone")
    assert "manifest unknown" in failed.value.stderr.lower()
    with pytest.raises(CommandError):
        raw_manifest(f"{repo}@{sample_images.single.digest}")  # deleted by digest, not untagged
    assert list_tags(registry_host, "test/delete") == ["kept"]
    assert json.loads(raw_manifest(f"{repo}:kept"))["mediaType"] == MT_DOCKER_MANIFEST


# --- podman -------------------------------------------------------------------------------------


def podman_load(podman: Cli, archive: Path) -> str:
    """podman load; returns the loaded image's name."""
    out = podman.run("load", "-i", archive)
    names = re.findall(r"Loaded image(?:\(s\))?: *(\S+)", out.stdout + out.stderr)
    assert names, out
    return str(names[-1])


def podman_id(podman: Cli, ref: str) -> str:
    return str(podman("image", "inspect", "--format", "{{.Id}}", ref).strip())


def test_podman_load_push_pull(
    podman: Cli, registry_host: str, sample_images: SampleImages
) -> None:
    info = sample_images.single
    assert info.config_digest is not None
    loaded = podman_load(podman, sample_images.archive)
    image_id = podman_id(podman, loaded)
    assert "sha256:" + image_id == info.config_digest

    ref = f"{registry_host}/test/podman:1"
    podman("tag", loaded, ref)
    digest_file = podman.home / "push.digest"
    podman("push", NO_TLS, "--digestfile", digest_file, ref)
    pushed_digest = digest_file.read_text().strip()
    raw = raw_manifest(ref)
    assert sha256_digest(raw) == pushed_digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == MT_DOCKER_MANIFEST  # podman keeps docker-archive's format
    assert manifest["config"]["digest"] == info.config_digest
    assert len(manifest["layers"]) == len(info.layers)

    podman("rmi", "--force", ref, loaded)
    with pytest.raises(CommandError):
        podman_id(podman, ref)
    podman("pull", NO_TLS, ref)
    assert podman_id(podman, ref) == image_id
    digests = podman("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    assert f"{registry_host}/test/podman@{pushed_digest}" in json.loads(digests)


def test_podman_pull_multiarch(podman: Cli, pushed_multi: str, sample_images: SampleImages) -> None:
    info = sample_images.multi
    for arch, extra in (("amd64", []), ("arm64", ["--arch", "arm64", "--variant", "v8"])):
        podman("pull", NO_TLS, *extra, pushed_multi)
        inspected = podman.json("image", "inspect", pushed_multi)[0]
        assert "sha256:" + inspected["Id"] == info.child(arch).config_digest
        assert inspected["Architecture"] == arch


# --- docker -------------------------------------------------------------------------------------


def docker_load(dockerd: Cli, archive: Path) -> str:
    out = dockerd("load", "-i", archive)
    names = re.findall(r"Loaded image: *(\S+)", out)
    assert names, out
    return str(names[-1])


def docker_inspect(dockerd: Cli, ref: str) -> dict[str, object]:
    result = dockerd.json("image", "inspect", ref)[0]
    assert isinstance(result, dict)
    return result


def docker_push(dockerd: Cli, ref: str) -> tuple[str, str]:
    """docker push; returns (log, manifest digest it reports)."""
    out = dockerd("push", ref)
    found = re.search(r"digest: (sha256:[0-9a-f]{64}) size: \d+", out)
    assert found, out
    return out, found.group(1)


def test_docker_load_push_pull(
    docker: Cli, registry_host: str, sample_images: SampleImages
) -> None:
    info = sample_images.single
    loaded = docker_load(docker, sample_images.archive)
    image_id = docker_inspect(docker, loaded)["Id"]
    assert image_id == info.config_digest

    ref = f"{registry_host}/test/docker:1"
    docker("tag", loaded, ref)
    _, digest = docker_push(docker, ref)
    raw = raw_manifest(ref)
    assert sha256_digest(raw) == digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == MT_DOCKER_MANIFEST
    assert manifest["config"]["digest"] == info.config_digest
    assert len(manifest["layers"]) == len(info.layers)

    docker("rmi", ref, loaded)
    with pytest.raises(CommandError):
        docker_inspect(docker, ref)
    docker("pull", ref)
    pulled = docker_inspect(docker, ref)
    assert pulled["Id"] == image_id
    assert f"{registry_host}/test/docker@{digest}" in pulled["RepoDigests"]  # type: ignore[operator]


def test_docker_push_mounts_across_repositories(
    docker: Cli, registry_host: str, sample_images: SampleImages
) -> None:
    loaded = docker_load(docker, sample_images.archive)
    first, second = (f"{registry_host}/test/docker-mount-{x}:1" for x in "ab")
    docker("tag", loaded, first)
    docker("tag", loaded, second)
    _, first_digest = docker_push(docker, first)
    log, second_digest = docker_push(docker, second)
    assert second_digest == first_digest
    mounted = re.findall(r"Mounted from (\S+)", log)
    assert len(mounted) == len(sample_images.single.layers), log
    assert all(repo.startswith("test/docker") for repo in mounted), log


def test_docker_pull_multiarch(docker: Cli, pushed_multi: str, sample_images: SampleImages) -> None:
    info = sample_images.multi
    docker("pull", pushed_multi)
    pulled = docker_inspect(docker, pushed_multi)
    assert (pulled["Os"], pulled["Architecture"]) == ("linux", "amd64")
    assert pulled["Id"] == info.child("amd64").config_digest
    repo = pushed_multi.rsplit(":", 1)[0]
    assert f"{repo}@{info.digest}" in pulled["RepoDigests"]  # type: ignore[operator]
