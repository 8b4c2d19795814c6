"""System settings in Harbor's shape: /api/v2.0/configurations (the system admin's).

GET answers ``{key: {"value": ..., "editable": ...}}``; PUT takes ``{key: value}``
for the editable keys.  What comes from the environment (how users log in,
the read-only switch) is shown but not editable here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.bindings import setting_set
from rbac.policy import PROJECT_CREATION_CHOICES, System
from rbac.policy import project_creation_restriction as creation_restriction
from rbac.roles import Act

from .base import ApiView
from .schema import done, errors
from .system import auth_modes


class StringItemSerializer(serializers.Serializer):
    value = serializers.CharField()
    editable = serializers.BooleanField()


class BoolItemSerializer(serializers.Serializer):
    value = serializers.BooleanField()
    editable = serializers.BooleanField()


class ConfigurationsSerializer(serializers.Serializer):
    project_creation_restriction = StringItemSerializer(help_text="adminonly or everyone.")
    auth_mode = StringItemSerializer(help_text="db_auth, ldap_auth or oidc_auth (environment).")
    read_only = BoolItemSerializer(help_text="HARBORPY_READ_ONLY (environment).")
    self_registration = BoolItemSerializer()


class ConfigurationsUpdateSerializer(serializers.Serializer):
    project_creation_restriction = serializers.ChoiceField(
        choices=list(PROJECT_CREATION_CHOICES), required=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            editable = sorted(self.fields)
            raise serializers.ValidationError(
                f"not editable here: {unknown}; the editable settings are {editable}"
            )
        return attrs


def configurations_out() -> dict[str, Any]:
    return {
        "project_creation_restriction": {"value": creation_restriction(), "editable": True},
        "auth_mode": {"value": auth_modes()[-1], "editable": False},
        "read_only": {"value": settings.HARBORPY_READ_ONLY, "editable": False},
        "self_registration": {"value": False, "editable": False},
    }


class ConfigurationsView(ApiView):
    """GET the system settings; PUT changes the editable ones (audited).  Admin only."""

    @extend_schema(
        operation_id="getConfigurations",
        summary="The system settings",
        responses={200: ConfigurationsSerializer, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        self.require((System.SETTING, Act.READ))
        return Response(configurations_out())

    @extend_schema(
        operation_id="updateConfigurations",
        summary="Change system settings",
        request=ConfigurationsUpdateSerializer,
        responses={**done(), **errors(400, 401, 403)},
    )
    def put(self, request: Request) -> Response:
        self.require((System.SETTING, Act.UPDATE))
        body = ConfigurationsUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        current = configurations_out()
        for key, value in body.validated_data.items():
            if value != current[key]["value"]:
                setting_set(key=key, value=value, actor=self.actor)
        return Response(status=200)
