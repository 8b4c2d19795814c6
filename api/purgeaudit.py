"""Audit log rotation in Harbor v2's shapes: /api/v2.0/system/purgeaudit[/{id}[/log]], /schedule.

System admins only (the ``purge-audit`` system resource).  ``POST
/system/purgeaudit/schedule`` with a ``Manual`` schedule starts a run now;
``PUT`` sets the periodic schedule (stored in the database) and ``GET`` shows
it.  Parameters are Harbor's: ``audit_retention_hour`` (entries older than
this go), ``include_operations`` (``"push,pull"``; empty: every action) and
``dry_run``.  How a purge keeps the hash chain verifiable is in
docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditPurgeRun, PurgeStatus
from audit.rotation import audit_purge_start
from audit.schedule import PurgeSchedule, audit_purge_schedule_get, audit_purge_schedule_set
from audit.selectors import audit_purge_run_get, audit_purge_run_list
from rbac.policy import System
from rbac.roles import Act

from .base import ApiView, paginate
from .gc import MANUAL, GCScheduleTypeOutSerializer, GCScheduleTypeSerializer
from .schema import PAGE_HEADERS, errors, listing, page_parameters

# Harbor's job states for ours.
JOB_STATUS = {
    PurgeStatus.PENDING: "Pending",
    PurgeStatus.RUNNING: "Running",
    PurgeStatus.SUCCEEDED: "Success",
    PurgeStatus.FAILED: "Error",
}
RETENTION_HELP = "Entries older than this many hours are purged (0 or more)."
OPERATIONS_HELP = "Comma-separated actions to purge (push,pull,delete,login...); empty: all."


class PurgeParametersSerializer(serializers.Serializer):
    audit_retention_hour = serializers.IntegerField(required=False, help_text=RETENTION_HELP)
    include_operations = serializers.CharField(
        required=False, allow_blank=True, default="", help_text=OPERATIONS_HELP
    )
    dry_run = serializers.BooleanField(default=False, help_text="Count only; delete nothing.")


class PurgeParametersOutSerializer(serializers.Serializer):
    audit_retention_hour = serializers.IntegerField(allow_null=True, help_text=RETENTION_HELP)
    include_operations = serializers.CharField(allow_blank=True, help_text=OPERATIONS_HELP)
    dry_run = serializers.BooleanField()


class PurgeRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_name = serializers.CharField(help_text="PURGE_AUDIT")
    job_kind = serializers.ChoiceField(
        choices=["MANUAL", "SCHEDULE"], help_text="SCHEDULE: started by the schedule"
    )
    job_status = serializers.ChoiceField(choices=list(JOB_STATUS.values()))
    job_parameters = PurgeParametersOutSerializer()
    creation_time = serializers.DateTimeField()
    update_time = serializers.DateTimeField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    cutoff = serializers.DateTimeField(allow_null=True, help_text="Entries before it went.")
    deleted = serializers.IntegerField(help_text="Entries deleted; for a dry run, would be.")
    operator = serializers.CharField(help_text="Who started it (system: the schedule).")


class PurgeStartSerializer(serializers.Serializer):
    schedule = GCScheduleTypeSerializer()
    parameters = PurgeParametersSerializer(required=False)

    def validate_schedule(self, value: dict[str, Any]) -> dict[str, Any]:
        if value["type"] != MANUAL:
            raise serializers.ValidationError(
                "only Manual, to start a run now; PUT sets the periodic schedule"
            )
        return value


class PurgeScheduleSerializer(serializers.Serializer):
    schedule = GCScheduleTypeOutSerializer()
    parameters = PurgeParametersOutSerializer()
    update_time = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_blank=True)


class PurgeScheduleSetSerializer(serializers.Serializer):
    schedule = GCScheduleTypeSerializer()
    parameters = PurgeParametersSerializer(required=False)


def schedule_out(schedule: PurgeSchedule) -> dict[str, Any]:
    following = schedule.next_run()
    return {
        "schedule": {
            "type": schedule.kind,
            "cron": schedule.cron,
            "next_scheduled_time": following.isoformat() if following else None,
        },
        "parameters": {
            "audit_retention_hour": schedule.retention_hour,
            "include_operations": ",".join(schedule.operations),
            "dry_run": schedule.dry_run,
        },
        "update_time": schedule.updated_at.isoformat() if schedule.updated_at else None,
        "updated_by": schedule.updated_by,
    }


def run_out(run: AuditPurgeRun) -> dict[str, Any]:
    updated = run.finished_at or run.heartbeat_at or run.started_at or run.created_at
    return {
        "id": run.pk,
        "job_name": "PURGE_AUDIT",
        "job_kind": "SCHEDULE" if run.trigger == "schedule" else "MANUAL",
        "job_status": JOB_STATUS[PurgeStatus(run.status)],
        "job_parameters": {
            "audit_retention_hour": run.retention_hour,
            "include_operations": ",".join(run.operations),
            "dry_run": run.dry_run,
        },
        "creation_time": run.created_at.isoformat(),
        "update_time": updated.isoformat(),
        "start_time": run.started_at.isoformat() if run.started_at else None,
        "end_time": run.finished_at.isoformat() if run.finished_at else None,
        "cutoff": run.cutoff.isoformat() if run.cutoff else None,
        "deleted": run.deleted,
        "operator": run.actor,
    }


class PurgeView(ApiView):
    def run(self, purge_id: int) -> AuditPurgeRun:
        self.require((System.PURGE_AUDIT, Act.READ))
        run = audit_purge_run_get(run_id=purge_id)
        if run is None:
            raise NotFound(f"audit log purge {purge_id} not found")
        return run


class PurgeListView(PurgeView):
    """GET the runs, newest first."""

    @extend_schema(
        operation_id="getPurgeHistory",
        summary="List audit log purges",
        parameters=[*page_parameters(), *PAGE_HEADERS],
        responses=listing(PurgeRunSerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.PURGE_AUDIT, Act.LIST))
        return paginate(request, audit_purge_run_list(), run_out)


class PurgeRunView(PurgeView):
    @extend_schema(
        operation_id="getPurgeJob",
        summary="Get an audit log purge",
        responses={200: PurgeRunSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, purge_id: int) -> Response:
        return Response(run_out(self.run(purge_id)))


class PurgeLogView(PurgeView):
    @extend_schema(
        operation_id="getPurgeJobLog",
        summary="The log of an audit log purge (text/plain)",
        responses={
            200: OpenApiResponse(OpenApiTypes.STR, description="One line per batch."),
            **errors(401, 403, 404),
        },
    )
    def get(self, request: Request, purge_id: int) -> HttpResponse:
        return HttpResponse(self.run(purge_id).log, content_type="text/plain; charset=utf-8")


class PurgeScheduleView(ApiView):
    """GET the periodic rotation; PUT sets it; POST a Manual one starts a run now."""

    @extend_schema(
        operation_id="getPurgeSchedule",
        summary="The audit log rotation schedule",
        responses={200: PurgeScheduleSerializer, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        self.require((System.PURGE_AUDIT, Act.READ))
        return Response(schedule_out(audit_purge_schedule_get()))

    @extend_schema(
        operation_id="updatePurgeSchedule",
        summary="Set the periodic audit log rotation (type None: none)",
        request=PurgeScheduleSetSerializer,
        responses={200: PurgeScheduleSerializer, **errors(400, 401, 403)},
    )
    def put(self, request: Request) -> Response:
        self.require((System.PURGE_AUDIT, Act.UPDATE))
        body = PurgeScheduleSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        schedule = body.validated_data["schedule"]
        parameters = body.validated_data.get("parameters") or {}
        changed = audit_purge_schedule_set(
            kind=schedule["type"],
            cron=schedule.get("cron", ""),
            retention_hour=parameters.get("audit_retention_hour"),
            operations=parameters.get("include_operations", ""),
            dry_run=parameters.get("dry_run", False),
            actor=self.actor,
        )
        return Response(schedule_out(changed))

    @extend_schema(
        operation_id="createPurgeSchedule",
        summary="Start an audit log purge now (schedule type Manual)",
        request=PurgeStartSerializer,
        responses={
            201: OpenApiResponse(PurgeRunSerializer, description="Started; Location names it."),
            **errors(400, 401, 403, 409),
        },
    )
    def post(self, request: Request) -> Response:
        self.require((System.PURGE_AUDIT, Act.CREATE))
        body = PurgeStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        parameters = body.validated_data.get("parameters") or {}
        run = audit_purge_start(
            retention_hour=parameters.get("audit_retention_hour"),
            operations=parameters.get("include_operations", ""),
            dry_run=parameters.get("dry_run", False),
            actor=self.actor,
        )
        response = Response(run_out(run), status=201)
        response["Location"] = f"/api/v2.0/system/purgeaudit/{run.pk}"
        return response
