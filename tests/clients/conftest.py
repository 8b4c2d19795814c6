"""Fixtures for the real-client tests: the clients, the sample images, the registry under test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def registry_host(client_registry) -> str:
    """ "127.0.0.1:PORT" of the harborpy server under test."""
    return client_registry.host
