"""Robot accounts in Harbor v2's shapes: /api/v2.0/robots[/{id}[/secret]], /projects/{p}/robots.

A system robot (level ``system``) is the system admin's; a project robot
(level ``project``) belongs to the project its one permission names, and is
managed by whoever holds the robot permissions there.  The secret is shown
once: in the answer to the create or refresh call.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from projects.models import Project
from rbac.models import Robot
from rbac.policy import Kind, System
from rbac.robots import (
    robot_create,
    robot_delete,
    robot_describe,
    robot_refresh_secret,
    robot_set_disabled,
)
from rbac.roles import Act, Res
from rbac.selectors import projects_permitting

from .base import ApiView, paginate, q_filter, q_terms
from .schema import PAGE_HEADERS, done, errors, listing, page_parameters

PROJECT, SYSTEM = "project", "system"


class AccessSerializer(serializers.Serializer):
    resource = serializers.ChoiceField(choices=["repository"])
    action = serializers.ChoiceField(choices=["pull", "push", "delete"])
    effect = serializers.CharField(required=False, help_text="Only 'allow' is supported.")


class RobotPermissionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[PROJECT])
    namespace = serializers.CharField(help_text="A project name, or '*' for every project.")
    access = AccessSerializer(many=True)


class RobotCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128, help_text="Without the robot$ prefix.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    level = serializers.ChoiceField(choices=[PROJECT, SYSTEM])
    duration = serializers.IntegerField(default=-1, help_text="Days to live; -1: never expires.")
    disable = serializers.BooleanField(default=False)
    permissions = RobotPermissionSerializer(many=True)

    def validate_duration(self, value: int) -> int:
        if value == 0 or value < -1:
            raise serializers.ValidationError("a positive number of days, or -1 for never")
        return value

    def validate_permissions(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(a.get("effect", "allow") != "allow" for p in value for a in p["access"]):
            raise serializers.ValidationError("only effect 'allow' is supported")
        return value


class RobotUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    disable = serializers.BooleanField(required=False)


class RobotSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        allow_blank=True, help_text="Leave empty: the registry makes a new secret."
    )


class RobotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="robot$<project>+<name>, or robot$<name>.")
    description = serializers.CharField()
    level = serializers.ChoiceField(choices=[PROJECT, SYSTEM])
    duration = serializers.IntegerField(help_text="Days to live; -1: never expires.")
    disable = serializers.BooleanField()
    editable = serializers.BooleanField()
    expires_at = serializers.IntegerField(help_text="Unix seconds; -1: never.")
    permissions = RobotPermissionSerializer(many=True)
    creation_time = serializers.DateTimeField()


class RobotCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    secret = serializers.CharField(help_text="Shown this once; only a hash is kept.")
    expires_at = serializers.IntegerField()
    creation_time = serializers.DateTimeField()


def _permissions_in(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Harbor's permission list as rbac.robots keeps it: ``{project, actions}``."""
    return [
        {"project": e["namespace"], "actions": [a["action"] for a in e["access"]]} for e in entries
    ]


def robot_out(robot: Robot) -> dict[str, Any]:
    expires = robot.expires_at
    days = -1 if expires is None else round((expires - robot.created_at).total_seconds() / 86400)
    return {
        "id": robot.pk,
        "name": robot.name,
        "description": robot.description,
        "level": PROJECT if robot.project_id else SYSTEM,
        "duration": days,
        "disable": robot.disabled,
        "editable": True,
        "expires_at": -1 if expires is None else int(expires.timestamp()),
        "permissions": [
            {
                "kind": PROJECT,
                "namespace": entry["project"],
                "access": [{"resource": "repository", "action": a} for a in entry["actions"]],
            }
            for entry in robot.permissions
        ],
        "creation_time": robot.created_at.isoformat(),
    }


class RobotListView(ApiView):
    """GET the robots the caller may see; POST creates a system or project robot."""

    @extend_schema(
        operation_id="listRobot",
        summary="List robots",
        parameters=[*page_parameters("name", "level", "project_id"), *PAGE_HEADERS],
        responses=listing(RobotSerializer, 400, 401),
    )
    def get(self, request: Request) -> Response:
        terms = q_terms(request, ("name", "level", "project_id"))
        robots = self._visible_robots()
        for term in [t for t in terms if t.key == "level"]:
            if term.value not in (PROJECT, SYSTEM):
                raise serializers.ValidationError({"level": "project or system"})
            robots = robots.filter(project__isnull=term.value == SYSTEM)
        fields = {"name": "name", "project_id": "project_id"}
        robots = q_filter(robots, [t for t in terms if t.key != "level"], fields)
        return paginate(request, robots.order_by("id"), robot_out)

    def _visible_robots(self) -> QuerySet[Robot]:
        if self.may((System.ROBOT, Act.LIST)):
            return Robot.objects.all()
        return Robot.objects.filter(
            project__in=projects_permitting(self.principal, (Res.ROBOT, Act.LIST))
        )

    @extend_schema(
        operation_id="createRobot",
        summary="Create a robot",
        request=RobotCreateSerializer,
        responses={
            201: OpenApiResponse(RobotCreatedSerializer, description="Created; the secret once."),
            **errors(400, 401, 403, 404),
        },
    )
    def post(self, request: Request) -> Response:
        body = RobotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        project = self._project_of_new_robot(data)
        user_id = self.principal.user_id if self.principal.kind is Kind.USER else None
        creator = get_user_model().objects.filter(pk=user_id).first() if user_id else None
        robot, secret = robot_create(
            name=data["name"],
            permissions=_permissions_in(data["permissions"]),
            project=project,
            days=None if data["duration"] == -1 else data["duration"],
            description=data["description"],
            actor=self.actor,
            created_by=creator,
        )
        if data["disable"]:
            robot_set_disabled(robot=robot, disabled=True, actor=self.actor)
        shown = {k: v for k, v in robot_out(robot).items() if k in RobotCreatedSerializer().fields}
        response = Response({**shown, "secret": secret}, status=201)
        response["Location"] = f"/api/v2.0/robots/{robot.pk}"
        return response

    def _project_of_new_robot(self, data: dict[str, Any]) -> Project | None:
        if data["level"] == SYSTEM:
            self.require((System.ROBOT, Act.CREATE))
            return None
        namespaces = {p["namespace"] for p in data["permissions"]}
        if len(namespaces) != 1 or "*" in namespaces:
            raise serializers.ValidationError(
                {"permissions": "a project robot has permissions on its one project"}
            )
        project = self.visible_project(namespaces.pop())
        self.require((Res.ROBOT, Act.CREATE), project)
        return project


class RobotLookup(ApiView):
    def robot(self, robot_id: int, action: Act) -> Robot:
        """The robot, if the caller may see it (else 404) and do ``action`` to it (else 403)."""
        robot = Robot.objects.select_related("project").filter(pk=robot_id).first()
        if robot is not None and robot.project is None:
            self.require((System.ROBOT, action))
            return robot
        if robot is None or not self.may((Res.PROJECT, Act.READ), robot.project):
            raise NotFound(f"robot {robot_id} not found")
        self.require((Res.ROBOT, action), robot.project)
        return robot


class RobotView(RobotLookup):
    """GET, PUT (description, disable) and DELETE one robot; PATCH refreshes its secret."""

    @extend_schema(
        operation_id="getRobotByID",
        summary="Get a robot",
        responses={200: RobotSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, robot_id: int) -> Response:
        return Response(robot_out(self.robot(robot_id, Act.READ)))

    @extend_schema(
        operation_id="updateRobot",
        summary="Change a robot's description or disable it",
        description="Only ``description`` and ``disable`` change; permissions and expiry do not.",
        request=RobotUpdateSerializer,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, robot_id: int) -> Response:
        robot = self.robot(robot_id, Act.UPDATE)
        body = RobotUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "description" in body.validated_data:
            robot_describe(
                robot=robot, description=body.validated_data["description"], actor=self.actor
            )
        disable = body.validated_data.get("disable")
        if disable is not None and disable != robot.disabled:
            robot_set_disabled(robot=robot, disabled=disable, actor=self.actor)
        return Response(status=200)

    @extend_schema(
        operation_id="refreshSec",
        summary="Refresh a robot's secret",
        request=RobotSecretSerializer,
        responses={200: RobotSecretSerializer, **errors(400, 401, 403, 404)},
    )
    def patch(self, request: Request, robot_id: int) -> Response:
        robot = self.robot(robot_id, Act.UPDATE)
        body = RobotSecretSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["secret"]:
            raise serializers.ValidationError(
                {"secret": "send it empty: the registry makes the new secret"}
            )
        return Response({"secret": robot_refresh_secret(robot=robot, actor=self.actor)})

    @extend_schema(
        operation_id="deleteRobot",
        summary="Delete a robot",
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, robot_id: int) -> Response:
        robot_delete(robot=self.robot(robot_id, Act.DELETE), actor=self.actor)
        return Response(status=200)


class RobotSecretView(RobotLookup):
    """POST: a new secret for the robot, shown once (the same as PATCH with an empty secret)."""

    @extend_schema(
        operation_id="refreshRobotSecret",
        summary="Refresh a robot's secret",
        request=None,
        responses={200: RobotSecretSerializer, **errors(401, 403, 404)},
    )
    def post(self, request: Request, robot_id: int) -> Response:
        robot = self.robot(robot_id, Act.UPDATE)
        return Response({"secret": robot_refresh_secret(robot=robot, actor=self.actor)})


class ProjectRobotListView(ApiView):
    """GET the project's robots."""

    @extend_schema(
        operation_id="listProjectRobots",
        summary="List a project's robots",
        parameters=[*page_parameters(), *PAGE_HEADERS],
        responses=listing(RobotSerializer, 401, 403, 404),
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.ROBOT, Act.LIST), found)
        return paginate(request, Robot.objects.filter(project=found).order_by("id"), robot_out)
