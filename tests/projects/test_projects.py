"""Projects as tenants: names, the library project, pushes into projects, quotas, the CLI."""

from __future__ import annotations

import os

import pytest

from distribution.models import Blob, Repository, Upload
from distribution.selectors import project_usage
from projects.exceptions import ProjectExists, ProjectNameInvalid, QuotaInvalid
from projects.models import Project
from projects.services import project_create, project_update
from tests.distribution.helpers import (
    assert_error,
    blob_file,
    digest_of,
    patch_chunk,
    push_blob,
    start_upload,
    upload_dirs,
)
from tests.fixtures import authed
from tests.fixtures.server import harborpy_command


@pytest.mark.django_db
def test_library_exists_from_the_start_and_is_public():
    """The data migration makes it (transactional tests empty the table, so run it here)."""
    import importlib

    from django.apps import apps

    Project.objects.filter(name="library").delete()
    importlib.import_module("projects.migrations.0002_library").create_library(apps, None)
    assert Project.objects.get(name="library").public


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["Upper", "-lead", "trail-", "a..b", "a/b", "", "x" * 256])
def test_invalid_project_names_are_refused(name):
    with pytest.raises(ProjectNameInvalid):
        project_create(name=name)


@pytest.mark.django_db
def test_project_names_are_unique_and_quotas_sane():
    project_create(name="team.a-1")
    with pytest.raises(ProjectExists):
        project_create(name="team.a-1")
    with pytest.raises(QuotaInvalid):
        project_create(name="team-b", quota_bytes=-1)


def test_a_push_into_a_missing_project_is_refused_before_any_byte(registry):
    response = authed.post(f"{registry.url}/v2/nowhere/app/blobs/uploads/")
    error = assert_error(response, 404, "NAME_UNKNOWN")
    assert "nowhere" in error["message"] and "does not exist" in error["message"]
    assert not Upload.objects.exists()
    body = b'{"schemaVersion": 2}'
    response = authed.put(
        f"{registry.url}/v2/nowhere/app/manifests/v1",
        data=body,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code in (400, 404)
    assert not Repository.objects.filter(name="nowhere/app").exists()


def test_a_repository_name_needs_a_project(registry):
    response = authed.post(f"{registry.url}/v2/app/blobs/uploads/")
    error = assert_error(response, 400, "NAME_INVALID")
    assert "<project>/<repository>" in error["message"]


def test_a_quota_counts_each_blob_once_per_project(registry):
    project = project_create(name="quota", quota_bytes=1000)
    first, second = os.urandom(600), os.urandom(600)
    uploads_before = upload_dirs(registry)

    assert push_blob(registry, "quota/app", first) == digest_of(first)
    # the same blob in a second repository of the project costs nothing more
    assert push_blob(registry, "quota/other", first) == digest_of(first)
    mounted = authed.post(
        f"{registry.url}/v2/quota/third/blobs/uploads/",
        params={"mount": digest_of(first), "from": "quota/app"},
    )
    assert mounted.status_code == 201
    assert project_usage(project=project) == 600

    response = authed.post(
        f"{registry.url}/v2/quota/app/blobs/uploads/",
        params={"digest": digest_of(second)},
        data=second,
    )
    error = assert_error(response, 403, "DENIED")
    assert "quota exceeded" in error["message"]
    assert error["detail"] == {"project": "quota", "quota": 1000, "used": 600, "needed": 600}
    assert not Blob.objects.filter(digest=digest_of(second)).exists()
    assert not blob_file(registry, digest_of(second)).exists()
    assert not Upload.objects.exists() and upload_dirs(registry) <= uploads_before

    # other projects are not limited by it
    assert push_blob(registry, "lib/app", second) == digest_of(second)
    # a mount into the full project is refused too
    refused = authed.post(
        f"{registry.url}/v2/quota/app/blobs/uploads/",
        params={"mount": digest_of(second), "from": "lib/app"},
    )
    assert_error(refused, 403, "DENIED")

    project_update(project=project, quota_bytes=None)
    assert push_blob(registry, "quota/app", second) == digest_of(second)
    assert project_usage(project=project) == 1200


def test_a_chunked_upload_over_quota_is_refused_at_completion(registry):
    project_create(name="tight", quota_bytes=100)
    data = os.urandom(500)
    uploads_before = upload_dirs(registry)
    location = start_upload(registry, "tight/app")
    assert patch_chunk(location, data, 0).status_code == 202
    response = authed.put(location, params={"digest": digest_of(data)})
    assert_error(response, 403, "DENIED")
    assert not Upload.objects.exists() and upload_dirs(registry) <= uploads_before
    assert not blob_file(registry, digest_of(data)).exists()


def test_the_project_command(registry):
    out = harborpy_command(registry, "project", "create", "cli-made", "--quota", "10M")
    assert "created project cli-made" in out
    project = Project.objects.get(name="cli-made")
    assert (project.public, project.quota_bytes) == (False, 10 << 20)
    push_blob(registry, "cli-made/app", os.urandom(2048))
    listing = harborpy_command(registry, "project", "list")
    row = next(line for line in listing.splitlines() if line.startswith("cli-made "))
    assert row.split()[1:] == ["private", "2", "KiB", "10", "MiB"]
    harborpy_command(registry, "project", "set", "cli-made", "--public", "--no-quota")
    project.refresh_from_db()
    assert (project.public, project.quota_bytes) == (True, None)
    with pytest.raises(RuntimeError, match="invalid project name"):
        harborpy_command(registry, "project", "create", "Bad_Name")
    with pytest.raises(RuntimeError, match="exists already"):
        harborpy_command(registry, "project", "create", "cli-made")


def test_the_project_command_works_before_the_first_serve(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "HARBORPY_STORAGE")}
    env["HARBORPY_DATA"] = str(tmp_path / "var")
    run = subprocess.run(
        [sys.executable, "-m", "harborpy.cli", "project", "create", "early"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "harborpy.cli", "project", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert {line.split()[0] for line in listing.splitlines()[1:]} == {"early", "library"}
