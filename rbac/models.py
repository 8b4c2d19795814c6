"""Identities beyond Django's users: robot accounts for automation."""

from __future__ import annotations

from django.conf import settings
from django.db import models

ROBOT_PREFIX = "robot$"


class Robot(models.Model):
    """A non-human account with an explicit permission list, a secret and an expiry.

    ``name`` is the full login name: ``robot$<project>+<name>`` for a robot of
    one project, ``robot$<name>`` for a system robot.  ``permissions`` is a list
    of ``{"project": <name or "*">, "actions": ["pull", "push", "delete"]}``.
    Only a hash of the secret is stored.
    """

    name = models.CharField(max_length=255, unique=True)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="robots"
    )
    description = models.CharField(max_length=1024, blank=True)
    secret_hash = models.CharField(max_length=255)
    permissions = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)  # None: never
    disabled = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
