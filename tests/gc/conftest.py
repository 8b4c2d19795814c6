"""Fixtures of the garbage-collection tests: a project to push into and a store per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from distribution.blobstore import blob_store
from distribution.storage import BlobStore


@pytest.fixture
def project(db):
    """The project ``gct``, which every service-level test pushes into."""
    from projects.models import Project

    project, _ = Project.objects.get_or_create(name="gct", defaults={"public": True})
    return project


@pytest.fixture
def use_filesystem(settings, tmp_path: Path) -> Callable[[], BlobStore]:
    def use() -> BlobStore:
        settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
        return blob_store()

    return use


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, settings, tmp_path: Path) -> BlobStore:
    """The configured blob store of this test: a fresh folder, or a fresh S3 bucket (moto)."""
    if request.param == "filesystem":
        settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
    else:
        settings.HARBORPY_STORAGE = request.getfixturevalue("s3_bucket_url")
    return blob_store()


@pytest.fixture
def fs_store(settings, tmp_path: Path) -> BlobStore:
    """A filesystem blob store in a fresh folder, as the configured store."""
    settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
    return blob_store()
