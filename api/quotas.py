"""Storage quotas and counts: /api/v2.0/quotas[/{id}], /api/v2.0/statistics.

A quota is a project's storage limit (``hard``, -1 for none) beside what it
uses (``used``); its id is the project's id.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.models import Repository
from distribution.selectors import project_usage, storage_usage
from projects.models import Project
from projects.services import project_update
from rbac.policy import System
from rbac.roles import Act
from rbac.selectors import visible_projects

from .base import ApiView, paginate
from .schema import PAGE_HEADERS, done, errors, listing, page_parameters


class StorageSerializer(serializers.Serializer):
    storage = serializers.IntegerField(help_text="Bytes; -1 in hard: no limit.")


class QuotaRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    owner_name = serializers.CharField(allow_blank=True)


class QuotaSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The project's id.")
    ref = QuotaRefSerializer()
    hard = StorageSerializer()
    used = StorageSerializer()
    creation_time = serializers.DateTimeField()


class QuotaUpdateSerializer(serializers.Serializer):
    hard = StorageSerializer()

    def validate_hard(self, value: dict[str, int]) -> dict[str, int]:
        if value["storage"] < -1:
            raise serializers.ValidationError("storage is a number of bytes, or -1 for no limit")
        return value


class StatisticSerializer(serializers.Serializer):
    private_project_count = serializers.IntegerField()
    public_project_count = serializers.IntegerField()
    total_project_count = serializers.IntegerField()
    private_repo_count = serializers.IntegerField()
    public_repo_count = serializers.IntegerField()
    total_repo_count = serializers.IntegerField()
    total_storage_consumption = serializers.IntegerField(
        required=False, help_text="Bytes; shown to the system admin only."
    )


def quota_out(project: Project) -> dict[str, Any]:
    return {
        "id": project.pk,
        "ref": {
            "id": project.pk,
            "name": project.name,
            "owner_name": project.owner.get_username() if project.owner else "",
        },
        "hard": {"storage": -1 if project.quota_bytes is None else project.quota_bytes},
        "used": {"storage": project_usage(project=project)},
        "creation_time": project.created_at.isoformat(),
    }


class QuotaListView(ApiView):
    """Every project's quota and usage, by project id.  Admin only."""

    @extend_schema(
        operation_id="listQuotas",
        summary="List quotas",
        parameters=[*page_parameters(), *PAGE_HEADERS],
        responses=listing(QuotaSerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.QUOTA, Act.LIST))
        projects = Project.objects.select_related("owner").order_by("id")
        return paginate(request, projects, quota_out)


class QuotaView(ApiView):
    """GET one project's quota; PUT sets its storage limit.  Admin only."""

    def project(self, quota_id: int, action: Act) -> Project:
        self.require((System.QUOTA, action))
        project = Project.objects.select_related("owner").filter(pk=quota_id).first()
        if project is None:
            raise NotFound(f"quota {quota_id} not found")
        return project

    @extend_schema(
        operation_id="getQuota",
        summary="Get a quota",
        responses={200: QuotaSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, quota_id: int) -> Response:
        return Response(quota_out(self.project(quota_id, Act.READ)))

    @extend_schema(
        operation_id="updateQuota",
        summary="Set a project's storage limit",
        request=QuotaUpdateSerializer,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, quota_id: int) -> Response:
        project = self.project(quota_id, Act.UPDATE)
        body = QuotaUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        storage = body.validated_data["hard"]["storage"]
        project_update(
            project=project, quota_bytes=None if storage == -1 else storage, actor=self.actor
        )
        return Response(status=200)


class StatisticView(ApiView):
    """Counts of the projects and repositories the caller may see; storage for the admin."""

    @extend_schema(
        operation_id="getStatistic",
        summary="Counts of projects and repositories",
        responses={200: StatisticSerializer, **errors(401)},
    )
    def get(self, request: Request) -> Response:
        projects = visible_projects(self.principal)
        counted = projects.aggregate(public=Count("id", filter=Q(public=True)), total=Count("id"))
        repositories = Repository.objects.filter(project__in=projects).aggregate(
            public=Count("id", filter=Q(project__public=True)), total=Count("id")
        )
        body = {
            "private_project_count": counted["total"] - counted["public"],
            "public_project_count": counted["public"],
            "total_project_count": counted["total"],
            "private_repo_count": repositories["total"] - repositories["public"],
            "public_repo_count": repositories["public"],
            "total_repo_count": repositories["total"],
        }
        if self.may((System.QUOTA, Act.READ)):
            body["total_storage_consumption"] = storage_usage()
        return Response(body)
