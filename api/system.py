"""The service itself: /api/v2.0/systeminfo and /api/v2.0/health."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.blobstore import blob_store
from rbac.policy import project_creation_restriction

from .base import ApiView


class SystemInfoSerializer(serializers.Serializer):
    harbor_version = serializers.CharField()
    auth_mode = serializers.CharField()
    auth_modes = serializers.ListField(child=serializers.CharField())
    registry_url = serializers.CharField()
    read_only = serializers.BooleanField()
    self_registration = serializers.BooleanField()
    oidc_provider_name = serializers.CharField(allow_blank=True)
    project_creation_restriction = serializers.CharField(
        required=False, help_text="Shown to logged-in callers."
    )


class ComponentHealthSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    error = serializers.CharField(required=False)
    latency_ms = serializers.FloatField()


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    components = ComponentHealthSerializer(many=True)


VERSION = "0.1.0"


def auth_modes() -> list[str]:
    modes = ["db_auth"]
    if getattr(settings, "AUTH_LDAP_SERVER_URI", ""):
        modes.append("ldap_auth")
    if settings.HARBORPY_OIDC_ENDPOINT:
        modes.append("oidc_auth")
    return modes


class SystemInfoView(ApiView):
    """What a client or the console needs to know about this registry; open to anyone."""

    anonymous_reads = True

    @extend_schema(
        operation_id="getSystemInfo",
        summary="What clients need to know about this registry",
        responses=SystemInfoSerializer,
    )
    def get(self, request: Request) -> Response:
        info = {
            "harbor_version": f"harborpy {VERSION}",
            "auth_mode": auth_modes()[-1],
            "auth_modes": auth_modes(),
            "registry_url": request.get_host(),
            "read_only": settings.HARBORPY_READ_ONLY,
            "self_registration": False,
            "oidc_provider_name": settings.HARBORPY_OIDC_NAME
            if settings.HARBORPY_OIDC_ENDPOINT
            else "",
        }
        if not self.principal.is_anonymous:
            info["project_creation_restriction"] = project_creation_restriction()
        return Response(info)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    key = "harborpy:health"
    cache.set(key, "ok", 30)
    if cache.get(key) != "ok":
        raise RuntimeError("the cache does not return what was stored")


def _storage() -> None:
    next(iter(blob_store().upload_ids()), None)


COMPONENTS: dict[str, Callable[[], None]] = {
    "database": _database,
    "cache": _cache,
    "storage": _storage,
}


class HealthView(ApiView):
    """Each component's state; 503 when any is unhealthy. Open to anyone, as in Harbor."""

    anonymous_reads = True

    @extend_schema(
        operation_id="getHealth",
        summary="Each component's health",
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(HealthSerializer, description="A component is unhealthy."),
        },
    )
    def get(self, request: Request) -> Response:
        components: list[dict[str, Any]] = []
        for name, check in COMPONENTS.items():
            started = time.monotonic()
            try:
                check()
                entry: dict[str, Any] = {"name": name, "status": "healthy"}
            except Exception as error:
                entry = {
                    "name": name,
                    "status": "unhealthy",
                    "error": f"{type(error).__name__}: {error}",
                }
            entry["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
            components.append(entry)
        healthy = all(c["status"] == "healthy" for c in components)
        body = {"status": "healthy" if healthy else "unhealthy", "components": components}
        return Response(body, status=200 if healthy else 503)
