"""Fixtures for the real-client tests: the clients, the sample images, the registry under test."""

from __future__ import annotations

import pytest

from tests.fixtures.clients import dockerd, podman, reference_registry, sample_images  # noqa: F401
from tests.fixtures.images import build_image, build_multiarch  # noqa: F401


@pytest.fixture(scope="session")
def registry_host(client_registry) -> str:
    """ "127.0.0.1:PORT" of the harborpy server under test."""
    return client_registry.host
