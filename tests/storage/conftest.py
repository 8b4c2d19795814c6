"""Fixtures for the blob-store tests: every test runs once per backend.

``store`` is a fresh store: a ``FilesystemStore`` in ``tmp_path``, or an
``S3Store`` on a fresh bucket of the test S3 endpoint (see tests/fixtures/s3.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from distribution.storage import BlobStore, open_store

BACKENDS = ["filesystem", "s3"]


@pytest.fixture(params=BACKENDS)
def make_store_url(request: pytest.FixtureRequest, tmp_path) -> Callable[..., str]:
    """``make_store_url(prefix="store")``: a storage URL of this test's backend.

    Stores under different prefixes share the backend (one folder tree, one
    bucket) but must not see each other's data; ``""`` is the root.
    """
    if request.param == "filesystem":
        root = tmp_path / "fs"
        return lambda prefix="store": f"file://{root / prefix if prefix else root}"
    bucket_url: str = request.getfixturevalue("s3_bucket_url")
    return lambda prefix="store": bucket_url.replace("/store?", f"/{prefix}?", 1)


@pytest.fixture
def store_url(make_store_url: Callable[..., str]) -> str:
    """The storage URL of ``store``."""
    return make_store_url()


@pytest.fixture
def make_store(make_store_url: Callable[..., str]) -> Callable[..., BlobStore]:
    """``make_store(prefix="store")``: open a store of this test's backend."""
    return lambda prefix="store": open_store(make_store_url(prefix))


@pytest.fixture
def store(make_store: Callable[..., BlobStore]) -> BlobStore:
    """A fresh, empty store of this test's backend."""
    return make_store()
