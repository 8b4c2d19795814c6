"""Labels: global ones (the system admin's) and a project's, in Harbor's shapes.

``GET/POST /labels`` (``scope=g``, or ``scope=p&project_id=N``) and
``GET/PUT/DELETE /labels/{id}``.  Anybody may read global labels; a project's
labels are read and written by its role table (``(Res.LABEL, ...)``).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated, NotFound, ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.artifacts import labels_of
from distribution.exceptions import LabelUnknown
from distribution.models import Label
from distribution.services import label_create, label_delete, label_update
from projects.models import Project
from rbac.policy import System
from rbac.roles import Act, Res

from .artifacts import LabelSerializer, label_out
from .base import ApiView, paginate, q_filter, q_terms
from .schema import PAGE_HEADERS, done, errors, listing, location, page_parameters

LABEL_ID = OpenApiParameter("label_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class LabelIn(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    color = serializers.RegexField(r"^(#[0-9a-fA-F]{6})?$", required=False, default="")
    description = serializers.CharField(
        max_length=1024, required=False, allow_blank=True, default=""
    )
    scope = serializers.ChoiceField(
        choices=[Label.GLOBAL, Label.PROJECT],
        default=Label.GLOBAL,
        help_text="g: global (the system admin's); p: a project's.",
    )
    project_id = serializers.IntegerField(
        required=False, min_value=1, help_text="The project, with scope p."
    )


class LabelUpdateIn(serializers.Serializer):
    name = serializers.CharField(max_length=128, required=False)
    color = serializers.RegexField(r"^(#[0-9a-fA-F]{6})?$", required=False)
    description = serializers.CharField(max_length=1024, required=False, allow_blank=True)


class LabelApiView(ApiView):
    anonymous_reads = True

    def scoped(self, scope: str, project_id: object, act: Act) -> Project | None:
        """The project a project-scoped request is about (None for global), authorized."""
        if scope == Label.GLOBAL:
            if act is not Act.LIST and act is not Act.READ:
                self.require((System.LABEL, act))
            return None
        if scope != Label.PROJECT:
            raise ParseError("scope is g (global) or p (project)")
        if not str(project_id or "").isdigit():
            raise ParseError("a project label needs project_id")
        project = Project.objects.filter(pk=int(str(project_id))).first()
        if project is None or not self.may((Res.PROJECT, Act.READ), project):
            if self.principal.is_anonymous:
                raise NotAuthenticated("authentication required")
            raise NotFound(f"project {project_id} not found")
        self.require((Res.LABEL, act), project)
        return project

    def label(self, label_id: int, act: Act) -> Label:
        label = Label.objects.select_related("project").filter(pk=label_id).first()
        if label is None:
            raise LabelUnknown(f"no label {label_id}")
        try:
            self.scoped(label.scope, label.project_id, act)
        except NotFound:
            raise LabelUnknown(f"no label {label_id}") from None
        return label


class LabelListView(LabelApiView):
    """GET global or a project's labels (q: name); POST creates one."""

    @extend_schema(
        operation_id="listLabels",
        summary="List global labels, or a project's",
        parameters=[
            OpenApiParameter(
                "scope",
                str,
                enum=[Label.GLOBAL, Label.PROJECT],
                description="g: global labels (the default); p: a project's.",
            ),
            OpenApiParameter("project_id", int, description="The project, with scope=p."),
            OpenApiParameter("name", str, description="The exact name (as q=name=...)."),
            *page_parameters("name"),
            *PAGE_HEADERS,
        ],
        responses=listing(LabelSerializer, 400, 401, 403, 404),
    )
    def get(self, request: Request) -> Response:
        scope = request.query_params.get("scope", Label.GLOBAL)
        project = self.scoped(scope, request.query_params.get("project_id"), Act.LIST)
        labels = q_filter(labels_of(project), q_terms(request, ("name",)), {"name": "name"})
        return paginate(request, labels, label_out)

    @extend_schema(
        operation_id="createLabel",
        summary="Create a global label (the system admin) or a project's",
        request=LabelIn,
        parameters=[location("The new label.")],
        responses={**done("Created.", 201), **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        body = LabelIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = self.scoped(data["scope"], data.get("project_id"), Act.CREATE)
        label = label_create(
            name=data["name"],
            color=data["color"],
            description=data["description"],
            project=project,
            actor=self.actor,
        )
        response = Response(status=201)
        response["Location"] = f"/api/v2.0/labels/{label.pk}"
        return response


class LabelView(LabelApiView):
    """GET, PUT (name, color, description) and DELETE one label."""

    @extend_schema(
        operation_id="getLabel",
        summary="Get a label",
        parameters=[LABEL_ID],
        responses={200: LabelSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, label_id: int) -> Response:
        return Response(label_out(self.label(label_id, Act.READ)))

    @extend_schema(
        operation_id="updateLabel",
        summary="Change a label's name, color or description",
        request=LabelUpdateIn,
        parameters=[LABEL_ID],
        responses={**done(), **errors(400, 401, 403, 404, 409)},
    )
    def put(self, request: Request, label_id: int) -> Response:
        label = self.label(label_id, Act.UPDATE)
        body = LabelUpdateIn(data=request.data)
        body.is_valid(raise_exception=True)
        label_update(label=label, changes=dict(body.validated_data), actor=self.actor)
        return Response(status=200)

    @extend_schema(
        operation_id="deleteLabel",
        summary="Delete a label (it comes off every artifact)",
        parameters=[LABEL_ID],
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, label_id: int) -> Response:
        label_delete(label=self.label(label_id, Act.DELETE), actor=self.actor)
        return Response(status=200)
