"""Projects: the tenants of the registry.

A repository belongs to the project its name starts with (``library/app``
is in ``library``), as in Harbor.  ``library`` exists from the start and is
public.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Project(models.Model):
    """A namespace of repositories with its own visibility and storage quota."""

    name = models.CharField(max_length=255, unique=True)
    public = models.BooleanField(default=False)
    # Bytes of distinct blobs the project may hold; None means no limit.
    quota_bytes = models.BigIntegerField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_projects",
    )
    # A proxy cache: the id of the registry endpoint (replication.RegistryEndpoint) whose
    # content this project caches on pull; pushes are refused.  None: an ordinary project.
    # An id rather than a key because endpoints live in an app above this one.
    registry_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def is_proxy_cache(self) -> bool:
        return self.registry_id is not None
