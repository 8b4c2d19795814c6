"""Identities beyond Django's users (robot accounts), role bindings, CLI secrets, settings."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

from .roles import Role

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


class RoleBinding(models.Model):
    """A project role held by one subject: a user, a group, or a robot.

    One binding per subject and project; a user's rights in a project are the
    union of their own binding and those of their groups.
    """

    ROLE_CHOICES = [(role.value, role.value) for role in Role]

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="role_bindings"
    )
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="role_bindings"
    )
    robot = models.ForeignKey(
        Robot, null=True, blank=True, on_delete=models.CASCADE, related_name="role_bindings"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="rolebinding_one_subject",
                condition=(
                    models.Q(user__isnull=False, group__isnull=True, robot__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False, robot__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=True, robot__isnull=False)
                ),
            ),
            models.UniqueConstraint(
                fields=["project", "user"],
                name="rolebinding_user",
                condition=models.Q(user__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["project", "group"],
                name="rolebinding_group",
                condition=models.Q(group__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["project", "robot"],
                name="rolebinding_robot",
                condition=models.Q(robot__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.role} in {self.project_id}"

    @property
    def subject(self) -> str:
        """``user:alice``, ``group:dev-team`` or ``robot:robot$prod+ci``."""
        if self.user is not None:
            return f"user:{self.user.get_username()}"
        if self.group is not None:
            return f"group:{self.group.name}"
        assert self.robot is not None
        return f"robot:{self.robot.name}"


class CliSecret(models.Model):
    """A user's secret for docker login and other CLI tools, shown on their profile.

    SSO users have no password the registry could check; this secret stands in
    for one.  It is kept sealed (encrypted with a key derived from SECRET_KEY)
    so the profile can show it again, and as a SHA-256 digest for the check.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cli_secret"
    )
    digest = models.CharField(max_length=64)
    sealed = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"CLI secret of user {self.user_id}"


class SystemSetting(models.Model):
    """A system-wide setting the admin changes at run time (a key and a JSON value)."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key


class GroupType(models.Model):
    """Where a group comes from, in Harbor's numbers: 1 LDAP, 2 HTTP (made here), 3 OIDC.

    Groups made by LDAP or SSO logins have no row; ``rbac.groups.group_type_of``
    reports them by the login method in use.
    """

    LDAP, HTTP, OIDC = 1, 2, 3
    CHOICES = [(LDAP, "LDAP"), (HTTP, "HTTP"), (OIDC, "OIDC")]

    group = models.OneToOneField(
        Group, primary_key=True, on_delete=models.CASCADE, related_name="kind"
    )
    group_type = models.PositiveSmallIntegerField(choices=CHOICES, default=HTTP)

    def __str__(self) -> str:
        return f"{self.group_id}: {self.get_group_type_display()}"
