"""Fixtures for the real-client tests: the clients, the sample images, the registry under test."""

from __future__ import annotations

import pytest

from tests.fixtures.server import ADMIN


@pytest.fixture(scope="session")
def registry_host(client_registry) -> str:
    """ "127.0.0.1:PORT" of the harborpy server under test."""
    return client_registry.host


@pytest.fixture(scope="session")
def docker(dockerd, registry_host: str):
    """The private Docker engine, logged in to the registry under test as the admin."""
    out = dockerd("login", registry_host, "-u", ADMIN[0], "-p", ADMIN[1])
    assert "Login Succeeded" in out, out
    return dockerd
