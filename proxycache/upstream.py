"""Which upstream registry a repository of a proxy-cache project comes from.

``upstream_for(name)`` is asked on every manifest and blob read, so the
answer per project (its endpoint, or none) is remembered in the process for
``PROJECT_TTL`` seconds: a read costs a dictionary lookup, not a query, and a
changed endpoint (URL, credentials) is used within that time.  Clients are
kept per endpoint and credentials, so their bearer tokens are reused.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from projects.models import Project
from replication.client import RegistryClient
from replication.models import RegistryEndpoint
from replication.services import client_for

# How long the process trusts what it read about a project (proxy cache or not).
PROJECT_TTL = 10.0
MAX_PROJECTS = 10_000
MAX_CLIENTS = 100
# Registries that keep official images under library/ while clients name them bare.
DOCKER_HUB_HOSTS = {
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
}


@dataclass(frozen=True)
class Upstream:
    """A repository of a proxy-cache project and where its content comes from."""

    project: str
    endpoint: RegistryEndpoint
    repository: str  # the name upstream

    @property
    def endpoint_name(self) -> str:
        return self.endpoint.name

    @property
    def client(self) -> RegistryClient:
        """The endpoint's client, made on first use: ReplicationError (AuthError) when its
        password cannot be opened, which the callers treat as an upstream that is down."""
        return _client(self.endpoint)


_projects: dict[str, tuple[float, RegistryEndpoint | None]] = {}
_clients: dict[tuple, RegistryClient] = {}
_lock = threading.Lock()


def upstream_for(name: str) -> Upstream | None:
    """The upstream of repository ``name``, or None when its project is no proxy cache."""
    project, _, rest = name.partition("/")
    if not rest:
        return None
    endpoint = _endpoint(project)
    if endpoint is None:
        return None
    return Upstream(
        project=project, endpoint=endpoint, repository=upstream_repository(endpoint.url, rest)
    )


def upstream_repository(endpoint_url: str, rest: str) -> str:
    """The upstream name of a repository: the part after the project, with Docker Hub's
    ``library/`` in front of a one-part name (``hub/nginx`` is ``library/nginx`` there)."""
    host = urlsplit(endpoint_url if "://" in endpoint_url else "https://" + endpoint_url).hostname
    if host in DOCKER_HUB_HOSTS and "/" not in rest:
        return f"library/{rest}"
    return rest


def forget_projects() -> None:
    """Drop what this process remembers about projects (tests; a project just changed)."""
    with _lock:
        _projects.clear()


def _endpoint(project: str) -> RegistryEndpoint | None:
    """The endpoint ``project`` caches: None for an ordinary project, or when the endpoint
    was removed under it (the project then serves what it has cached)."""
    now = time.monotonic()
    known = _projects.get(project)
    if known is not None and known[0] > now:
        return known[1]
    registry_id = Project.objects.filter(name=project).values_list("registry_id", flat=True).first()
    endpoint = None
    if registry_id is not None:
        endpoint = RegistryEndpoint.objects.filter(pk=registry_id).first()
    with _lock:
        if len(_projects) >= MAX_PROJECTS:  # names of missing projects must not pile up
            _projects.clear()
        _projects[project] = (now + PROJECT_TTL, endpoint)
    return endpoint


def _client(endpoint: RegistryEndpoint) -> RegistryClient:
    key = (endpoint.pk, endpoint.url, endpoint.username, endpoint.password, endpoint.verify_tls)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if len(_clients) >= MAX_CLIENTS:  # endpoints changed many times: start afresh
                _clients.clear()
            client = _clients[key] = client_for(endpoint)
        return client
