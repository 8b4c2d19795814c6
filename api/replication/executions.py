"""/api/v2.0/replication/executions: runs of a policy and their tasks (system admins)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.policy import System
from rbac.roles import Act
from replication.models import Execution
from replication.operations import execution_request, execution_stop

from ..base import paginate
from ..schema import PAGE_HEADERS, done, errors, listing, page_parameters
from .base import ReplicationView
from .shapes import (
    ExecutionSerializer,
    ExecutionStartSerializer,
    TaskSerializer,
    execution_out,
    task_out,
)


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
        execution = execution_request(policy=policy, actor=self.actor)  # PolicyDisabled: 400
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
        execution_stop(execution=execution, actor=self.actor)
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
