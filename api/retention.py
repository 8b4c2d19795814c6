"""Tag immutability rules and the tag retention policy of a project (docs/retention.md).

``/api/v2.0/projects/{p}/immutabletagrules[/{id}]`` and
``/api/v2.0/projects/{p}/retention[/executions]``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.immutability import (
    immutable_rule_create,
    immutable_rule_delete,
    immutable_rule_update,
)
from distribution.models import ImmutableRule, RetentionPolicy, RetentionRun
from distribution.retention import (
    retention_policy_get,
    retention_policy_set,
    retention_run_get,
    retention_runs,
    retention_start,
)
from rbac.roles import Act, Res

from .base import ApiView, paginate
from .schema import PAGE_HEADERS, done, errors, listing, page_parameters


def iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


class ImmutableRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    project_id = serializers.IntegerField(read_only=True)
    repository_pattern = serializers.CharField(
        max_length=255, default="**", help_text="doublestar glob on the name inside the project"
    )
    tag_pattern = serializers.CharField(max_length=255, help_text="doublestar glob")
    disabled = serializers.BooleanField(default=False)


def rule_out(rule: ImmutableRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "project_id": rule.project_id,
        "repository_pattern": rule.repository_pattern,
        "tag_pattern": rule.tag_pattern,
        "disabled": rule.disabled,
    }


class ImmutableRuleListView(ApiView):
    """GET the project's immutability rules; POST adds one."""

    @extend_schema(
        operation_id="listImmuRules",
        summary="List the project's tag immutability rules",
        parameters=[*page_parameters(), *PAGE_HEADERS],
        responses=listing(ImmutableRuleSerializer, 401, 403, 404),
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.IMMUTABLE_TAG, Act.LIST), found)
        return paginate(request, found.immutable_rules.order_by("id"), rule_out)

    @extend_schema(
        operation_id="createImmuRule",
        summary="Add a tag immutability rule",
        request=ImmutableRuleSerializer,
        responses={201: ImmutableRuleSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.IMMUTABLE_TAG, Act.CREATE), found)
        body = ImmutableRuleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rule = immutable_rule_create(project=found, actor=self.actor, **body.validated_data)
        response = Response(rule_out(rule), status=201)
        response["Location"] = f"{request.path}/{rule.pk}"
        return response


class ImmutableRuleView(ApiView):
    """PUT replaces a rule (patterns, disabled); DELETE removes it."""

    @extend_schema(
        operation_id="updateImmuRule",
        summary="Replace a tag immutability rule",
        request=ImmutableRuleSerializer,
        responses={200: ImmutableRuleSerializer, **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, project: str, rule_id: int) -> Response:
        found = self.visible_project(project)
        self.require((Res.IMMUTABLE_TAG, Act.UPDATE), found)
        body = ImmutableRuleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rule = immutable_rule_update(
            project=found, rule_id=rule_id, actor=self.actor, **body.validated_data
        )
        return Response(rule_out(rule))

    @extend_schema(
        operation_id="deleteImmuRule",
        summary="Remove a tag immutability rule",
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, project: str, rule_id: int) -> Response:
        found = self.visible_project(project)
        self.require((Res.IMMUTABLE_TAG, Act.DELETE), found)
        immutable_rule_delete(project=found, rule_id=rule_id, actor=self.actor)
        return Response(status=200)


class RetentionPolicySerializer(serializers.Serializer):
    rules = serializers.ListField(
        child=serializers.DictField(),
        help_text=(
            'e.g. [{"repository": "**", "tag": "v*", "latestPushedK": 3}]; one action each of '
            "latestPushedK, latestPulledN, nDaysSinceLastPush, nDaysSinceLastPull, always"
        ),
    )
    schedule = serializers.CharField(
        allow_blank=True, default="", help_text="cron (5 fields); empty: manual runs only"
    )


class RetentionRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(
        help_text=(
            "pending (until a worker takes it), running (the counters grow), succeeded or failed"
        )
    )
    dry_run = serializers.BooleanField()
    trigger = serializers.CharField(help_text="manual or schedule")
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField(allow_null=True)
    retained = serializers.IntegerField()
    deleted = serializers.IntegerField()
    manifests_deleted = serializers.IntegerField()
    log = serializers.CharField()


class RunIn(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False)


def policy_out(policy: RetentionPolicy | None) -> dict[str, Any]:
    if policy is None:
        return {"rules": [], "schedule": ""}
    return {"rules": policy.rules, "schedule": policy.schedule}


def run_out(run: RetentionRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "dry_run": run.dry_run,
        "trigger": run.trigger,
        "start_time": iso(run.started_at),
        "end_time": iso(run.finished_at),
        "retained": run.retained,
        "deleted": run.deleted,
        "manifests_deleted": run.manifests_deleted,
        "log": run.log,
    }


class RetentionPolicyView(ApiView):
    """GET the project's retention policy (no rules when none is set); PUT replaces it."""

    @extend_schema(
        operation_id="getRetention",
        summary="The project's tag retention policy",
        responses={200: RetentionPolicySerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.TAG_RETENTION, Act.READ), found)
        return Response(policy_out(retention_policy_get(project=found)))

    @extend_schema(
        operation_id="updateRetention",
        summary="Set the project's tag retention policy",
        request=RetentionPolicySerializer,
        responses={200: RetentionPolicySerializer, **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.TAG_RETENTION, Act.UPDATE), found)
        body = RetentionPolicySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = retention_policy_set(project=found, actor=self.actor, **body.validated_data)
        return Response(policy_out(policy))


class RetentionRunListView(ApiView):
    """GET the project's retention runs, newest first; POST starts a run of the policy."""

    @extend_schema(
        operation_id="listRetentionExecutions",
        summary="The project's retention runs",
        parameters=[*page_parameters(), *PAGE_HEADERS],
        responses=listing(RetentionRunSerializer, 401, 403, 404),
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.TAG_RETENTION, Act.LIST), found)
        return paginate(request, retention_runs(project=found), run_out)

    @extend_schema(
        operation_id="triggerRetentionExecution",
        summary="Start a run of the retention policy on a worker (dry_run: report only)",
        request=RunIn,
        responses={
            201: OpenApiResponse(
                RetentionRunSerializer,
                description="The run, pending; Location names it, to follow its status.",
            ),
            **errors(400, 401, 403, 404),
        },
    )
    def post(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.TAG_RETENTION, Act.OPERATE), found)
        body = RunIn(data=request.data)
        body.is_valid(raise_exception=True)
        policy = retention_policy_get(project=found)
        if policy is None:
            raise NotFound(f"project {found.name!r} has no retention policy; PUT one first")
        run = retention_start(
            policy=policy, dry_run=body.validated_data["dry_run"], actor=self.actor
        )
        response = Response(run_out(run), status=201)
        response["Location"] = f"{request.path}/{run.pk}"
        return response


class RetentionRunView(ApiView):
    """GET one retention run: its status, counters and log."""

    @extend_schema(
        operation_id="getRetentionExecution",
        summary="A retention run",
        responses={200: RetentionRunSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, project: str, run_id: int) -> Response:
        found = self.visible_project(project)
        self.require((Res.TAG_RETENTION, Act.READ), found)
        run = retention_run_get(project=found, run_id=run_id)
        if run is None:
            raise NotFound(f"retention run {run_id} not found in project {found.name!r}")
        return Response(run_out(run))
