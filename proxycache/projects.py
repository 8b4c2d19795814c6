"""Proxy-cache projects: created with the registry endpoint they cache."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import Actor
from projects.models import Project
from rbac.bindings import project_create_owned
from replication.models import RegistryEndpoint


class ProxyEndpointUnknown(Exception):
    """The registry endpoint a proxy-cache project should cache does not exist."""


def endpoint_choices() -> list[RegistryEndpoint]:
    """The endpoints a new proxy-cache project may cache, by name."""
    return list(RegistryEndpoint.objects.order_by("name").only("id", "name", "url"))


def proxy_upstream_name(project: Project) -> str | None:
    """The name of the endpoint a proxy-cache project caches (None: not one, or it is gone)."""
    if project.registry_id is None:
        return None
    return (
        RegistryEndpoint.objects.filter(pk=project.registry_id)
        .values_list("name", flat=True)
        .first()
    )


def proxy_project_create(
    *,
    name: str,
    registry_id: int,
    public: bool = False,
    quota_bytes: int | None = None,
    owner: Any = None,
    actor: Actor,
) -> Project:
    """Create a project that caches the content of registry endpoint ``registry_id``.

    As in Harbor, the link is set at creation and kept for the project's life.
    """
    with transaction.atomic():
        # Locked, so the endpoint cannot be deleted while its first project is created.
        if RegistryEndpoint.objects.select_for_update().filter(pk=registry_id).first() is None:
            raise ProxyEndpointUnknown(f"registry endpoint {registry_id} does not exist")
        return project_create_owned(
            name=name,
            public=public,
            quota_bytes=quota_bytes,
            owner=owner,
            registry_id=registry_id,
            actor=actor,
        )
