"""The audit log in Harbor's shapes: /api/v2.0/audit-logs[/verify], /projects/{p}/logs.

Newest first, paged, two queries a page (the count and the rows).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEntry
from audit.selectors import audit_verify
from rbac.models import ROBOT_PREFIX
from rbac.policy import System
from rbac.roles import Act, Res

from .base import ApiView, paginate, q_filter, q_terms
from .schema import PAGE_HEADERS, errors, listing, page_parameters

FILTERS = ("operation", "resource", "resource_type", "username", "op_time")
FIELDS = {
    "operation": "action",
    "resource": "resource",
    "resource_type": "resource",
    "username": "actor",
    "op_time": "at",
}
RANGE_DOC = "op_time takes a range: op_time=[2026-01-01 00:00:00~2026-12-31 23:59:59] (UTC)."
# Resources written "<type>:<name>" by the services that record them.
PREFIXED_TYPES = ("project", "user", "group", "setting")


class AuditLogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(help_text="Who: a user or robot name, or anonymous.")
    resource = serializers.CharField()
    resource_type = serializers.CharField(
        help_text="artifact, repository, project, user, group, robot or setting."
    )
    operation = serializers.CharField(
        help_text="push, pull, delete, login, project, permission, user, group, setting..."
    )
    op_time = serializers.DateTimeField()
    source = serializers.CharField(allow_blank=True, help_text="The client's address.")


class ChainCheckSerializer(serializers.Serializer):
    intact = serializers.BooleanField()
    entries = serializers.IntegerField(help_text="Entries checked before the first break.")
    broken_at = serializers.IntegerField(allow_null=True, help_text="Id of the first bad entry.")
    reason = serializers.CharField(allow_blank=True)


def resource_type(resource: str) -> str:
    kind, sep, _ = resource.partition(":")
    if sep and kind in PREFIXED_TYPES:
        return kind
    if resource.startswith(ROBOT_PREFIX):
        return "robot"
    name = resource.split("/", 1)[-1]
    return "artifact" if "@" in name or ":" in name else "repository"


def entry_out(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "username": entry.actor,
        "resource": entry.resource,
        "resource_type": resource_type(entry.resource),
        "operation": entry.action,
        "op_time": entry.at.isoformat(),
        "source": entry.source,
    }


def _type_filter(entries: QuerySet[AuditEntry], kind: str) -> QuerySet[AuditEntry]:
    if kind in PREFIXED_TYPES:
        return entries.filter(resource__startswith=f"{kind}:")
    if kind == "robot":
        return entries.filter(resource__startswith=ROBOT_PREFIX)
    named = entries.filter(resource__contains="/")
    artifact = Q(resource__contains="@") | Q(resource__regex=r"^[^:]*/[^/]*:[^/]*$")
    if kind == "artifact":
        return named.filter(artifact)
    if kind == "repository":
        return named.exclude(artifact)
    raise serializers.ValidationError({"resource_type": f"unknown type {kind!r}"})


def entries_page(request: Request, entries: QuerySet[AuditEntry]) -> Response:
    terms = q_terms(request, FILTERS)
    for term in [t for t in terms if t.key == "resource_type"]:
        entries = _type_filter(entries, term.value)
    terms = [t for t in terms if t.key != "resource_type"]
    entries = q_filter(entries, terms, FIELDS, times=("op_time",))
    return paginate(request, entries.order_by("-id"), entry_out)


LIST_PARAMETERS = [*page_parameters(*FILTERS, doc=RANGE_DOC), *PAGE_HEADERS]


class AuditLogListView(ApiView):
    """Every entry, newest first.  Admin only."""

    @extend_schema(
        operation_id="listAuditLogs",
        summary="List audit log entries",
        parameters=LIST_PARAMETERS,
        responses=listing(AuditLogSerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.AUDIT_LOG, Act.LIST))
        return entries_page(request, AuditEntry.objects.all())


class AuditLogVerifyView(ApiView):
    """Walk the hash chain: intact, or where it first breaks.  Admin only."""

    @extend_schema(
        operation_id="verifyAuditLogs",
        summary="Verify the audit log's hash chain",
        responses={200: ChainCheckSerializer, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        self.require((System.AUDIT_LOG, Act.READ))
        check = audit_verify()
        return Response(
            {
                "intact": check.intact,
                "entries": check.entries,
                "broken_at": check.broken_at.pk if check.broken_at else None,
                "reason": check.reason,
            }
        )


class ProjectLogListView(ApiView):
    """The project's entries: its repositories and artifacts, itself, its robots."""

    @extend_schema(
        operation_id="getLogs",
        summary="List a project's audit log entries",
        parameters=LIST_PARAMETERS,
        responses=listing(AuditLogSerializer, 400, 401, 403, 404),
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.LOG, Act.LIST), found)
        entries = AuditEntry.objects.filter(
            Q(resource__startswith=f"{found.name}/")
            | Q(resource=f"project:{found.name}")
            | Q(resource__startswith=f"{ROBOT_PREFIX}{found.name}+")
        )
        return entries_page(request, entries)
