"""Replication in Harbor v2's shapes: /api/v2.0/registries, /replication/policies, /executions.

System admins only.  An endpoint's password (``credential.access_secret``) is
write-only: it is never returned.  A policy pushes when ``dest_registry`` is
set and pulls when ``src_registry`` is.  ``POST /replication/executions``
starts a run on a worker; ``PUT /replication/executions/{id}`` stops it.  How
a run goes is in docs/replication.md.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import ProtectedError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import audit_record
from rbac.policy import System
from rbac.roles import Act
from replication.models import Direction, Execution, RegistryEndpoint, ReplicationPolicy, Task
from replication.services import endpoint_test, execution_cancel, execution_start

from .base import ApiView, paginate
from .schema import PAGE_HEADERS, done, errors, listing, page_parameters

# --- shapes --------------------------------------------------------------------------------


class CredentialSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["basic"], default="basic")
    access_key = serializers.CharField(required=False, allow_blank=True, help_text="The username.")
    access_secret = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="The password: write-only, never returned.",
    )


class RegistrySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=128)
    url = serializers.URLField(max_length=512, help_text="http(s)://host[:port]")
    credential = CredentialSerializer(required=False)
    insecure = serializers.BooleanField(default=False, help_text="Skip TLS verification.")
    creation_time = serializers.DateTimeField(read_only=True)


class PingSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="A saved endpoint; or give a body.")
    url = serializers.URLField(required=False, max_length=512)
    credential = CredentialSerializer(required=False)
    insecure = serializers.BooleanField(default=False)


class RegistryRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(read_only=True)


class FilterSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["name", "tag"])
    value = serializers.CharField(allow_blank=True, help_text="A doublestar glob.")


class PolicySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=128)
    src_registry = RegistryRefSerializer(
        required=False, allow_null=True, help_text="Set for pull: the remote source."
    )
    dest_registry = RegistryRefSerializer(
        required=False, allow_null=True, help_text="Set for push: the remote destination."
    )
    filters = FilterSerializer(many=True, required=False)
    dest_namespace = serializers.CharField(required=False, allow_blank=True, max_length=255)
    override = serializers.BooleanField(default=True)
    enabled = serializers.BooleanField(default=True)
    creation_time = serializers.DateTimeField(read_only=True)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if bool(data.get("src_registry")) == bool(data.get("dest_registry")):
            raise ValidationError(
                "give exactly one of src_registry (pull) and dest_registry (push)"
            )
        kinds = [f["type"] for f in data.get("filters") or []]
        if len(kinds) != len(set(kinds)):
            raise ValidationError("at most one filter of each type")
        return data


class ExecutionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    policy_id = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, running, succeeded, failed, cancelled")
    trigger = serializers.CharField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField()
    succeed = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    bytes = serializers.IntegerField()
    status_text = serializers.CharField(help_text="What stopped the whole run, if anything.")


class ExecutionStartSerializer(serializers.Serializer):
    policy_id = serializers.IntegerField()


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    execution_id = serializers.IntegerField()
    resource_type = serializers.CharField(help_text="image")
    src_resource = serializers.CharField()
    dst_resource = serializers.CharField()
    digest = serializers.CharField()
    status = serializers.CharField()
    bytes = serializers.IntegerField(help_text="Blob bytes actually transferred.")
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


def _time(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


def registry_out(endpoint: RegistryEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "name": endpoint.name,
        "url": endpoint.url,
        "credential": {"type": "basic", "access_key": endpoint.username},
        "insecure": not endpoint.verify_tls,
        "creation_time": endpoint.created_at.isoformat(),
    }


def policy_out(policy: ReplicationPolicy) -> dict[str, Any]:
    remote = {"id": policy.endpoint_id, "name": policy.endpoint.name}
    push = policy.direction == Direction.PUSH
    return {
        "id": policy.pk,
        "name": policy.name,
        "src_registry": None if push else remote,
        "dest_registry": remote if push else None,
        "filters": [
            {"type": "name", "value": policy.repository_filter},
            {"type": "tag", "value": policy.tag_filter},
        ],
        "dest_namespace": policy.destination_namespace,
        "override": policy.override,
        "enabled": policy.enabled,
        "creation_time": policy.created_at.isoformat(),
    }


def execution_out(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.pk,
        "policy_id": execution.policy_id,
        "status": execution.status,
        "trigger": execution.trigger,
        "start_time": _time(execution.started_at or execution.created_at),
        "end_time": _time(execution.finished_at),
        "total": execution.total,
        "succeed": execution.succeeded,
        "failed": execution.failed,
        "skipped": execution.skipped,
        "bytes": execution.bytes,
        "status_text": execution.error,
    }


def task_out(task: Task) -> dict[str, Any]:
    return {
        "id": task.pk,
        "execution_id": task.execution_id,
        "resource_type": "image",
        "src_resource": task.source,
        "dst_resource": task.destination,
        "digest": task.digest,
        "status": task.status,
        "bytes": task.bytes,
        "start_time": _time(task.started_at),
        "end_time": _time(task.finished_at),
        "error": task.error,
    }


def _apply_registry(endpoint: RegistryEndpoint, data: dict[str, Any]) -> None:
    for key in ("name", "url"):
        if key in data:
            setattr(endpoint, key, data[key])
    if "insecure" in data:
        endpoint.verify_tls = not data["insecure"]
    credential = data.get("credential")
    if credential is not None:
        if "access_key" in credential:
            endpoint.username = credential["access_key"]
        if "access_secret" in credential:
            endpoint.password = credential["access_secret"]


def _unique_name(model: type, name: str, pk: int | None) -> None:
    if model.objects.filter(name=name).exclude(pk=pk).exists():  # type: ignore[attr-defined]
        raise ValidationError({"name": f"{name!r} is taken"})


# --- registries ----------------------------------------------------------------------------


class ReplicationView(ApiView):
    def endpoint(self, registry_id: int) -> RegistryEndpoint:
        self.require((System.REPLICATION, Act.READ))
        endpoint = RegistryEndpoint.objects.filter(pk=registry_id).first()
        if endpoint is None:
            raise NotFound(f"registry {registry_id} not found")
        return endpoint

    def policy(self, policy_id: int) -> ReplicationPolicy:
        self.require((System.REPLICATION, Act.READ))
        policy = ReplicationPolicy.objects.select_related("endpoint").filter(pk=policy_id).first()
        if policy is None:
            raise NotFound(f"replication policy {policy_id} not found")
        return policy

    def execution(self, execution_id: int) -> Execution:
        self.require((System.REPLICATION, Act.READ))
        execution = Execution.objects.filter(pk=execution_id).first()
        if execution is None:
            raise NotFound(f"replication execution {execution_id} not found")
        return execution

    def audit(self, action: str, resource: str, **detail: Any) -> None:
        audit_record(actor=self.actor, action=action, resource=resource, detail=detail)


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
            **errors(400, 401, 403),
        },
    )
    def post(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.CREATE))
        body = RegistrySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        _unique_name(RegistryEndpoint, body.validated_data["name"], None)
        endpoint = RegistryEndpoint()
        _apply_registry(endpoint, body.validated_data)
        with transaction.atomic():
            endpoint.save()
            self.audit("create", f"registry:{endpoint.name}", url=endpoint.url)
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
        responses={200: RegistrySerializer, **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, registry_id: int) -> Response:
        endpoint = self.endpoint(registry_id)
        self.require((System.REPLICATION, Act.UPDATE))
        body = RegistrySerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "name" in body.validated_data:
            _unique_name(RegistryEndpoint, body.validated_data["name"], endpoint.pk)
        _apply_registry(endpoint, body.validated_data)
        with transaction.atomic():
            endpoint.save()
            self.audit("update", f"registry:{endpoint.name}", url=endpoint.url)
        return Response(registry_out(endpoint))

    @extend_schema(
        operation_id="deleteRegistry",
        summary="Delete a registry endpoint no policy uses",
        responses={**done(), **errors(401, 403, 404, 412)},
    )
    def delete(self, request: Request, registry_id: int) -> Response:
        endpoint = self.endpoint(registry_id)
        self.require((System.REPLICATION, Act.DELETE))
        try:
            with transaction.atomic():
                endpoint.delete()
                self.audit("delete", f"registry:{endpoint.name}")
        except ProtectedError:
            return Response(
                {
                    "errors": [
                        {
                            "code": "PRECONDITION_FAILED",
                            "message": f"registry {endpoint.name!r} is used by a policy",
                        }
                    ]
                },
                status=412,
            )
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
            _apply_registry(endpoint, {k: v for k, v in data.items() if k != "id"})
        elif data.get("url"):
            endpoint = RegistryEndpoint()
            _apply_registry(endpoint, data)
        else:
            raise ValidationError("give the id of an endpoint or its url")
        endpoint_test(endpoint=endpoint)  # ReplicationError: 400 with its text
        return Response(status=200)


# --- policies ------------------------------------------------------------------------------


def _policy_fields(policy: ReplicationPolicy, data: dict[str, Any]) -> None:
    if "name" in data:
        policy.name = data["name"]
    remote = data.get("dest_registry") or data.get("src_registry")
    if remote is not None:
        endpoint = RegistryEndpoint.objects.filter(pk=remote["id"]).first()
        if endpoint is None:
            raise ValidationError(f"registry {remote['id']} not found")
        policy.endpoint = endpoint
        policy.direction = Direction.PUSH if data.get("dest_registry") else Direction.PULL
    if "filters" in data:
        given = {f["type"]: f["value"] for f in data["filters"]}
        policy.repository_filter = given.get("name") or "**"
        policy.tag_filter = given.get("tag") or "*"
    if "dest_namespace" in data:
        policy.destination_namespace = data["dest_namespace"]
    for key in ("override", "enabled"):
        if key in data:
            setattr(policy, key, data[key])


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
            **errors(400, 401, 403),
        },
    )
    def post(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.CREATE))
        body = PolicySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        _unique_name(ReplicationPolicy, body.validated_data["name"], None)
        policy = ReplicationPolicy()
        _policy_fields(policy, {"filters": [], **body.validated_data})
        with transaction.atomic():
            policy.save()
            self.audit("create", f"replication-policy:{policy.name}", **policy_out(policy))
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
        summary="Update a replication policy",
        request=PolicySerializer,
        responses={200: PolicySerializer, **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, policy_id: int) -> Response:
        policy = self.policy(policy_id)
        self.require((System.REPLICATION, Act.UPDATE))
        data = dict(request.data)
        if "src_registry" not in data and "dest_registry" not in data:
            remote = {"id": policy.endpoint_id}
            push = policy.direction == Direction.PUSH
            data["dest_registry" if push else "src_registry"] = remote
        body = PolicySerializer(data=data, partial=True)
        body.is_valid(raise_exception=True)
        if "name" in body.validated_data:
            _unique_name(ReplicationPolicy, body.validated_data["name"], policy.pk)
        _policy_fields(policy, body.validated_data)
        with transaction.atomic():
            policy.save()
            self.audit("update", f"replication-policy:{policy.name}", **policy_out(policy))
        return Response(policy_out(policy))

    @extend_schema(
        operation_id="deleteReplicationPolicy",
        summary="Delete a replication policy and its executions",
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, policy_id: int) -> Response:
        policy = self.policy(policy_id)
        self.require((System.REPLICATION, Act.DELETE))
        with transaction.atomic():
            policy.delete()
            self.audit("delete", f"replication-policy:{policy.name}")
        return Response(status=200)


# --- executions ----------------------------------------------------------------------------


class ExecutionListView(ReplicationView):
    @extend_schema(
        operation_id="listReplicationExecutions",
        summary="List replication executions, newest first",
        parameters=[
            OpenApiParameter("policy_id", int, description="Only this policy's executions."),
            *page_parameters(),
            *PAGE_HEADERS,
        ],
        responses=listing(ExecutionSerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.LIST))
        executions = Execution.objects.order_by("-pk")
        policy_id = request.query_params.get("policy_id")
        if policy_id:
            if not policy_id.isdigit():
                raise ValidationError("policy_id is a whole number")
            executions = executions.filter(policy_id=int(policy_id))
        return paginate(request, executions, execution_out)

    @extend_schema(
        operation_id="startReplication",
        summary="Start a replication execution of a policy",
        request=ExecutionStartSerializer,
        responses={
            201: OpenApiResponse(ExecutionSerializer, description="Location names it."),
            **errors(400, 401, 403, 404),
        },
    )
    def post(self, request: Request) -> Response:
        self.require((System.REPLICATION, Act.CREATE))
        body = ExecutionStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = self.policy(body.validated_data["policy_id"])
        with transaction.atomic():
            execution = execution_start(policy=policy)  # PolicyDisabled: 400
            self.audit("replicate", f"replication-policy:{policy.name}", execution=execution.pk)
        response = Response(execution_out(execution), status=201)
        response["Location"] = f"/api/v2.0/replication/executions/{execution.pk}"
        return response


class ExecutionView(ReplicationView):
    @extend_schema(
        operation_id="getReplicationExecution",
        summary="Get a replication execution",
        responses={200: ExecutionSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, execution_id: int) -> Response:
        return Response(execution_out(self.execution(execution_id)))

    @extend_schema(
        operation_id="stopReplication",
        summary="Stop a replication execution (the task being copied finishes first)",
        request=None,
        responses={**done(), **errors(401, 403, 404)},
    )
    def put(self, request: Request, execution_id: int) -> Response:
        execution = self.execution(execution_id)
        self.require((System.REPLICATION, Act.UPDATE))
        with transaction.atomic():
            if execution_cancel(execution=execution):
                self.audit(
                    "stop",
                    f"replication-policy:{execution.policy.name}",
                    execution=execution.pk,
                )
        return Response(status=200)


class TaskListView(ReplicationView):
    @extend_schema(
        operation_id="listReplicationTasks",
        summary="List the tasks of a replication execution (one per tag)",
        parameters=[*page_parameters(), *PAGE_HEADERS],
        responses=listing(TaskSerializer, 400, 401, 403, 404),
    )
    def get(self, request: Request, execution_id: int) -> Response:
        execution = self.execution(execution_id)
        return paginate(request, execution.tasks.order_by("pk"), task_out)
