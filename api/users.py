"""The caller's own account: /api/v2.0/users/current and its CLI secret."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.cli_secrets import cli_secret_get, cli_secret_regenerate
from rbac.policy import Kind

from .base import ApiView


def user_out(user) -> dict[str, Any]:
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "realname": user.get_full_name(),
        "sysadmin_flag": bool(user.is_superuser),
        "creation_time": user.date_joined.isoformat(),
        "groups": sorted(user.groups.values_list("name", flat=True)),
    }


class CurrentUserMixin(ApiView):
    def current_user(self):
        if self.principal.kind is not Kind.USER or self.principal.user_id is None:
            raise PermissionDenied("only user accounts have a profile (robots and tokens do not)")
        return get_user_model().objects.get(pk=self.principal.user_id)


class CurrentUserView(CurrentUserMixin):
    def get(self, request: Request) -> Response:
        return Response(user_out(self.current_user()))


class CliSecretView(CurrentUserMixin):
    """GET shows the caller's CLI secret; POST replaces it (the old one stops working)."""

    def get(self, request: Request) -> Response:
        return Response({"secret": cli_secret_get(user=self.current_user())})

    def post(self, request: Request) -> Response:
        secret = cli_secret_regenerate(user=self.current_user(), actor=self.actor)
        return Response({"secret": secret})
