"""Garbage collection in Harbor v2's shapes: /api/v2.0/system/gc[/{id}[/log]], /system/gc/schedule.

System admins only.  ``POST /system/gc/schedule`` with a ``Manual`` schedule
starts a run now; ``PUT`` sets the periodic schedule (stored in the database;
until an admin sets one, the ``HARBORPY_GC_SCHEDULE`` setting is it), and
``GET`` shows the one in effect and where it comes from.  How a run goes is in
docs/gc.md.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.gc import gc_run_get, gc_run_list, gc_schedule_get, gc_schedule_set, gc_start
from distribution.gc.schedule import KINDS, Schedule
from distribution.models import GCRun, GCStatus
from rbac.policy import System
from rbac.roles import Act

from .base import ApiView, paginate
from .schema import PAGE_HEADERS, errors, listing, page_parameters

# Harbor's job states for ours.
JOB_STATUS = {
    GCStatus.PENDING: "Pending",
    GCStatus.RUNNING: "Running",
    GCStatus.SUCCEEDED: "Success",
    GCStatus.FAILED: "Error",
}
MANUAL, CUSTOM, NONE = "Manual", "Custom", "None"


class GCParametersSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False, help_text="Count only; delete nothing.")
    delete_untagged = serializers.BooleanField(
        default=False, help_text="Delete untagged manifests too."
    )
    grace = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Seconds a recently pushed blob is spared (default HARBORPY_GC_GRACE).",
    )


class GCRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job_name = serializers.CharField(help_text="GARBAGE_COLLECTION")
    job_kind = serializers.ChoiceField(
        choices=["MANUAL", "SCHEDULE"], help_text="SCHEDULE: started by the schedule"
    )
    job_status = serializers.ChoiceField(choices=list(JOB_STATUS.values()))
    job_parameters = GCParametersSerializer()
    creation_time = serializers.DateTimeField()
    update_time = serializers.DateTimeField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    blobs_deleted = serializers.IntegerField(help_text="For a dry run: would be deleted.")
    manifests_deleted = serializers.IntegerField()
    uploads_deleted = serializers.IntegerField()
    bytes_freed = serializers.IntegerField(help_text="For a dry run: would be freed.")


class GCScheduleTypeSerializer(serializers.Serializer):
    type = serializers.CharField(
        help_text=(
            "POST: Manual starts a run now.  PUT: the periodic schedule, one of "
            + ", ".join(KINDS)
            + " (Custom needs a cron; None: no periodic runs)."
        )
    )
    cron = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='"minute hour day month weekday", or Harbor\'s six fields (seconds 0 first)',
    )


class GCScheduleTypeOutSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=list(KINDS))
    cron = serializers.CharField(allow_blank=True)
    next_scheduled_time = serializers.DateTimeField(
        allow_null=True, help_text="When the next scheduled run starts; null: never."
    )


class GCScheduleParametersSerializer(serializers.Serializer):
    delete_untagged = serializers.BooleanField(
        default=False, help_text="Delete untagged manifests too."
    )
    grace = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Seconds a recently pushed blob is spared (default HARBORPY_GC_GRACE).",
    )


class GCStartSerializer(serializers.Serializer):
    schedule = GCScheduleTypeSerializer()
    parameters = GCParametersSerializer(required=False)

    def validate_schedule(self, value: dict[str, Any]) -> dict[str, Any]:
        if value["type"] != MANUAL:
            raise serializers.ValidationError(
                "only Manual, to start a run now; PUT sets the periodic schedule"
            )
        return value


class GCScheduleSerializer(serializers.Serializer):
    schedule = GCScheduleTypeOutSerializer()
    parameters = GCParametersSerializer()
    source = serializers.ChoiceField(
        choices=["setting", "admin"],
        help_text="setting: HARBORPY_GC_SCHEDULE (no admin has set one); admin: set by PUT",
    )
    update_time = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField(allow_blank=True)


class GCScheduleSetSerializer(serializers.Serializer):
    schedule = GCScheduleTypeSerializer()
    parameters = GCScheduleParametersSerializer(required=False)


def schedule_out(schedule: Schedule) -> dict[str, Any]:
    following = schedule.next_run()
    return {
        "schedule": {
            "type": schedule.kind,
            "cron": schedule.cron,
            "next_scheduled_time": following.isoformat() if following else None,
        },
        "parameters": {
            "dry_run": False,
            "delete_untagged": schedule.untagged,
            "grace": settings.HARBORPY_GC_GRACE if schedule.grace is None else schedule.grace,
        },
        "source": schedule.source,
        "update_time": schedule.updated_at.isoformat() if schedule.updated_at else None,
        "updated_by": schedule.updated_by,
    }


def gc_out(run: GCRun) -> dict[str, Any]:
    updated = run.finished_at or run.started_at or run.created_at
    return {
        "id": run.pk,
        "job_name": "GARBAGE_COLLECTION",
        "job_kind": "SCHEDULE" if run.trigger == "schedule" else "MANUAL",
        "job_status": JOB_STATUS[GCStatus(run.status)],
        "job_parameters": {
            "dry_run": run.dry_run,
            "delete_untagged": run.untagged,
            "grace": run.grace,
        },
        "creation_time": run.created_at.isoformat(),
        "update_time": updated.isoformat(),
        "start_time": run.started_at.isoformat() if run.started_at else None,
        "end_time": run.finished_at.isoformat() if run.finished_at else None,
        "blobs_deleted": run.blobs_deleted,
        "manifests_deleted": run.manifests_deleted,
        "uploads_deleted": run.uploads_deleted,
        "bytes_freed": run.bytes_freed,
    }


class GCView(ApiView):
    def run(self, gc_id: int) -> GCRun:
        self.require((System.GC, Act.READ))
        run = gc_run_get(run_id=gc_id)
        if run is None:
            raise NotFound(f"garbage collection {gc_id} not found")
        return run


class GCListView(GCView):
    """GET the runs, newest first."""

    @extend_schema(
        operation_id="getGCHistory",
        summary="List garbage collections",
        parameters=[*page_parameters(), *PAGE_HEADERS],
        responses=listing(GCRunSerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.GC, Act.LIST))
        return paginate(request, gc_run_list(), gc_out)


class GCRunView(GCView):
    @extend_schema(
        operation_id="getGC",
        summary="Get a garbage collection",
        responses={200: GCRunSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, gc_id: int) -> Response:
        return Response(gc_out(self.run(gc_id)))


class GCLogView(GCView):
    @extend_schema(
        operation_id="getGCLog",
        summary="The log of a garbage collection (text/plain)",
        responses={
            200: OpenApiResponse(OpenApiTypes.STR, description="One line per phase."),
            **errors(401, 403, 404),
        },
    )
    def get(self, request: Request, gc_id: int) -> HttpResponse:
        return HttpResponse(self.run(gc_id).log, content_type="text/plain; charset=utf-8")


class GCScheduleView(ApiView):
    """GET the periodic schedule in effect; PUT sets it; POST a Manual one starts a run now."""

    @extend_schema(
        operation_id="getGCSchedule",
        summary="The garbage-collection schedule in effect, and where it comes from",
        responses={200: GCScheduleSerializer, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        self.require((System.GC, Act.READ))
        return Response(schedule_out(gc_schedule_get()))

    @extend_schema(
        operation_id="updateGCSchedule",
        summary="Set the periodic garbage collection (type None: none)",
        request=GCScheduleSetSerializer,
        responses={200: GCScheduleSerializer, **errors(400, 401, 403)},
    )
    def put(self, request: Request) -> Response:
        self.require((System.GC, Act.UPDATE))
        body = GCScheduleSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        schedule = body.validated_data["schedule"]
        parameters = body.validated_data.get("parameters") or {}
        changed = gc_schedule_set(
            kind=schedule["type"],
            cron=schedule.get("cron", ""),
            untagged=parameters.get("delete_untagged", False),
            grace=parameters.get("grace"),
            actor=self.actor,
        )
        return Response(schedule_out(changed))

    @extend_schema(
        operation_id="createGCSchedule",
        summary="Start a garbage collection now (schedule type Manual)",
        request=GCStartSerializer,
        responses={
            201: OpenApiResponse(GCRunSerializer, description="Started; Location names the run."),
            **errors(400, 401, 403, 409),
        },
    )
    def post(self, request: Request) -> Response:
        self.require((System.GC, Act.CREATE))
        body = GCStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        parameters = body.validated_data.get("parameters") or {}
        run = gc_start(
            dry_run=parameters.get("dry_run", False),
            untagged=parameters.get("delete_untagged", False),
            grace=parameters.get("grace"),
            actor=self.actor,
        )
        response = Response(gc_out(run), status=201)
        response["Location"] = f"/api/v2.0/system/gc/{run.pk}"
        return response
