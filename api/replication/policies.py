"""/api/v2.0/replication/policies: what to copy, where, and when (system admins)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.policy import System
from rbac.roles import Act
from replication.models import Direction, RegistryEndpoint, ReplicationPolicy
from replication.policies import policy_create, policy_delete, policy_update

from ..base import paginate
from ..schema import PAGE_HEADERS, done, errors, listing, page_parameters
from .base import ReplicationView
from .shapes import PolicySerializer, policy_out


def policy_values(data: dict[str, Any]) -> dict[str, Any]:
    """The service's arguments from a request body: those given, by the model's names."""
    values: dict[str, Any] = {}
    if "name" in data:
        values["name"] = data["name"]
    remote = data.get("dest_registry") or data.get("src_registry")
    if remote is not None:
        endpoint = RegistryEndpoint.objects.filter(pk=remote["id"]).first()
        if endpoint is None:
            raise ValidationError(f"registry {remote['id']} not found")
        values["endpoint"] = endpoint
        values["direction"] = Direction.PUSH if data.get("dest_registry") else Direction.PULL
    if "filters" in data:  # the filters given replace all the policy's filters
        given = {f["type"]: f["value"] for f in data["filters"]}
        values["repository_filter"] = given.get("name") or "**"
        values["tag_filter"] = given.get("tag") or "*"
        values["label_filter"] = given.get("label") or []
    if "dest_namespace" in data:
        values["destination_namespace"] = data["dest_namespace"]
    if "trigger" in data:
        values["trigger"] = data["trigger"]["type"]
        values["schedule"] = (data["trigger"].get("trigger_settings") or {}).get("cron") or ""
    if "deletion" in data:
        values["replicate_deletion"] = data["deletion"]
    for key in ("override", "enabled"):
        if key in data:
            values[key] = data[key]
    return values


class PolicyListView(ReplicationView):
    @extend_schema(
        operation_id="listReplicationPolicies",
        summary="List replication policies",
        parameters=[*page_parameters("name"), *PAGE_HEADERS],
        responses=listing(PolicySerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.LIST))
        policies = ReplicationPolicy.objects.select_related("endpoint").order_by("pk")
        name = request.query_params.get("name")
        if name:
            policies = policies.filter(name__icontains=name)
        return paginate(request, policies, policy_out)

    @extend_schema(
        operation_id="createReplicationPolicy",
        summary="Create a replication policy",
        request=PolicySerializer,
        responses={
            201: OpenApiResponse(PolicySerializer, description="Location names it."),
            **errors(400, 401, 403, 409),
        },
    )
    def post(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.CREATE))
        body = PolicySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = policy_create(actor=self.actor, **policy_values(body.validated_data))
        response = Response(policy_out(policy), status=201)
        response["Location"] = f"/api/v2.0/replication/policies/{policy.pk}"
        return response


class PolicyView(ReplicationView):
    @extend_schema(
        operation_id="getReplicationPolicy",
        summary="Get a replication policy",
        responses={200: PolicySerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, policy_id: int) -> Response:
        return Response(policy_out(self.policy(policy_id)))

    @extend_schema(
        operation_id="updateReplicationPolicy",
        summary="Update a replication policy (the fields given; filters given replace all)",
        request=PolicySerializer,
        responses={200: PolicySerializer, **errors(400, 401, 403, 404, 409)},
    )
    def put(self, request: Request, policy_id: int) -> Response:
        policy = self.policy(policy_id)
        self.require((System.REPLICATION, Act.UPDATE))
        body = PolicySerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        policy_update(policy=policy, actor=self.actor, **policy_values(body.validated_data))
        return Response(policy_out(policy))

    @extend_schema(
        operation_id="deleteReplicationPolicy",
        summary="Delete a replication policy and its executions",
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, policy_id: int) -> Response:
        policy = self.policy(policy_id)
        self.require((System.REPLICATION, Act.DELETE))
        policy_delete(policy=policy, actor=self.actor)
        return Response(status=200)
