"""/api/v2.0/registries: remote registry endpoints (system admins)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.policy import System
from rbac.roles import Act
from replication.models import RegistryEndpoint
from replication.policies import endpoint_apply, endpoint_create, endpoint_delete, endpoint_update
from replication.services import endpoint_test

from ..base import paginate
from ..schema import PAGE_HEADERS, done, errors, listing, page_parameters
from .base import ReplicationView
from .shapes import PingSerializer, RegistrySerializer, registry_out


def endpoint_values(data: dict[str, Any]) -> dict[str, Any]:
    """The service's arguments from a request body: those given, by the model's names."""
    values: dict[str, Any] = {key: data[key] for key in ("name", "url") if key in data}
    if "insecure" in data:
        values["verify_tls"] = not data["insecure"]
    credential = data.get("credential") or {}
    if "access_key" in credential:
        values["username"] = credential["access_key"]
    if "access_secret" in credential:
        values["password"] = credential["access_secret"]
    return values


class RegistryListView(ReplicationView):
    @extend_schema(
        operation_id="listRegistries",
        summary="List registry endpoints",
        parameters=[*page_parameters("name"), *PAGE_HEADERS],
        responses=listing(RegistrySerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.LIST))
        endpoints = RegistryEndpoint.objects.order_by("pk")
        name = request.query_params.get("name")
        if name:
            endpoints = endpoints.filter(name__icontains=name)
        return paginate(request, endpoints, registry_out)

    @extend_schema(
        operation_id="createRegistry",
        summary="Create a registry endpoint",
        request=RegistrySerializer,
        responses={
            201: OpenApiResponse(RegistrySerializer, description="Location names it."),
            **errors(400, 401, 403, 409),
        },
    )
    def post(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.CREATE))
        body = RegistrySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = endpoint_create(actor=self.actor, **endpoint_values(body.validated_data))
        response = Response(registry_out(endpoint), status=201)
        response["Location"] = f"/api/v2.0/registries/{endpoint.pk}"
        return response


class RegistryView(ReplicationView):
    @extend_schema(
        operation_id="getRegistry",
        summary="Get a registry endpoint",
        responses={200: RegistrySerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, registry_id: int) -> Response:
        return Response(registry_out(self.endpoint(registry_id)))

    @extend_schema(
        operation_id="updateRegistry",
        summary="Update a registry endpoint (an absent access_secret keeps the password)",
        request=RegistrySerializer,
        responses={200: RegistrySerializer, **errors(400, 401, 403, 404, 409)},
    )
    def put(self, request: Request, registry_id: int) -> Response:
        endpoint = self.endpoint(registry_id)
        self.require((System.REPLICATION, Act.UPDATE))
        body = RegistrySerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        values = endpoint_values(body.validated_data)
        endpoint_update(endpoint=endpoint, actor=self.actor, **values)
        return Response(registry_out(endpoint))

    @extend_schema(
        operation_id="deleteRegistry",
        summary="Delete a registry endpoint no policy uses",
        responses={**done(), **errors(401, 403, 404, 412)},
    )
    def delete(self, request: Request, registry_id: int) -> Response:
        endpoint = self.endpoint(registry_id)
        self.require((System.REPLICATION, Act.DELETE))
        endpoint_delete(endpoint=endpoint, actor=self.actor)  # EndpointInUse: 412
        return Response(status=200)


class RegistryPingView(ReplicationView):
    @extend_schema(
        operation_id="pingRegistry",
        summary="Check that an endpoint answers and accepts its credentials",
        request=PingSerializer,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.READ))
        body = PingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("id") is not None:
            endpoint = self.endpoint(data["id"])
        elif data.get("url"):
            endpoint = RegistryEndpoint()
        else:
            raise ValidationError("give the id of an endpoint or its url")
        values = endpoint_values({k: v for k, v in data.items() if k != "id"})
        endpoint_apply(endpoint=endpoint, **values)  # not saved: only tried
        endpoint_test(endpoint=endpoint)  # ReplicationError: 400 with its text
        return Response(status=200)
