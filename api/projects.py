"""Projects and their members, in Harbor's shapes: /api/v2.0/projects[/{p}[/summary|/members]]."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.selectors import project_usage
from distribution.services import project_delete
from projects.models import Project
from projects.services import project_update
from proxycache.projects import proxy_project_create
from rbac.bindings import Subject, binding_remove, binding_set, bindings_of, project_create_owned
from rbac.exceptions import BindingInvalid
from rbac.models import RoleBinding
from rbac.policy import Kind, System
from rbac.roles import ROLE_IDS, ROLES_BY_ID, Act, Res, Role
from rbac.selectors import role_counts, roles_in_projects, visible_projects

from .base import ApiView, paginate, q_filter, q_terms
from .schema import PAGE_HEADERS, done, errors, listing, page_parameters


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class ProjectIn(serializers.Serializer):
    project_name = serializers.CharField(max_length=255, required=False)
    public = serializers.BooleanField(required=False, allow_null=True, default=None)
    metadata = serializers.DictField(child=serializers.CharField(), required=False)
    storage_limit = serializers.IntegerField(required=False, allow_null=True, min_value=-1)
    registry_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="A registry endpoint: the project becomes a proxy cache of it (creation only).",
    )

    def visibility(self) -> bool | None:
        data = self.validated_data
        if data.get("public") is not None:
            return data["public"]
        if "public" in data.get("metadata", {}):
            return _flag(data["metadata"]["public"])
        return None

    def quota(self, default: Any) -> Any:
        """``storage_limit``: bytes, -1 (or null) for no limit; ``default`` when absent."""
        if "storage_limit" not in self.validated_data:
            return default
        limit = self.validated_data["storage_limit"]
        return None if limit is None or limit < 0 else limit


class ProjectMetadataSerializer(serializers.Serializer):
    public = serializers.ChoiceField(choices=["true", "false"])


class ProjectSerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    name = serializers.CharField()
    owner_id = serializers.IntegerField(allow_null=True)
    owner_name = serializers.CharField(allow_blank=True)
    creation_time = serializers.DateTimeField()
    repo_count = serializers.IntegerField(allow_null=True)
    metadata = ProjectMetadataSerializer()
    storage_limit = serializers.IntegerField(help_text="Bytes; -1: no limit.")
    registry_id = serializers.IntegerField(
        allow_null=True, help_text="The registry endpoint a proxy-cache project caches."
    )
    current_user_role_id = serializers.IntegerField(help_text="0: no role.")
    current_user_role_ids = serializers.ListField(child=serializers.IntegerField())


class StorageAmountSerializer(serializers.Serializer):
    storage = serializers.IntegerField()


class SummaryQuotaSerializer(serializers.Serializer):
    hard = StorageAmountSerializer()
    used = StorageAmountSerializer()


class ProjectSummarySerializer(serializers.Serializer):
    repo_count = serializers.IntegerField()
    quota = SummaryQuotaSerializer()
    project_admin_count = serializers.IntegerField(required=False)
    maintainer_count = serializers.IntegerField(required=False)
    developer_count = serializers.IntegerField(required=False)
    guest_count = serializers.IntegerField(required=False)
    limited_guest_count = serializers.IntegerField(required=False)


def project_out(project: Project, roles: list[Role]) -> dict[str, Any]:
    return {
        "project_id": project.pk,
        "name": project.name,
        "owner_id": project.owner_id,
        "owner_name": project.owner.get_username() if project.owner else "",
        "creation_time": project.created_at.isoformat(),
        "repo_count": getattr(project, "repo_count", None),
        "metadata": {"public": "true" if project.public else "false"},
        "storage_limit": -1 if project.quota_bytes is None else project.quota_bytes,
        "registry_id": project.registry_id,
        "current_user_role_id": ROLE_IDS[roles[0]] if roles else 0,
        "current_user_role_ids": [ROLE_IDS[r] for r in roles],
    }


class ProjectListView(ApiView):
    """GET: the projects the caller may see (q: name, public, owner); POST: create one."""

    anonymous_reads = True

    @extend_schema(
        operation_id="listProjects",
        summary="List the projects the caller may see",
        parameters=[*page_parameters("name", "public", "owner"), *PAGE_HEADERS],
        responses=listing(ProjectSerializer, 400, 401),
    )
    def get(self, request: Request) -> Response:
        terms = q_terms(request, ("name", "public", "owner"))
        fields = {"name": "name", "public": "public", "owner": "owner__username"}
        projects = q_filter(visible_projects(self.principal), terms, fields)
        projects = (
            projects.select_related("owner")
            .annotate(repo_count=Count("repositories", distinct=True))
            .order_by("name")
        )
        return _project_page(self, request, projects)

    @extend_schema(
        operation_id="createProject",
        summary="Create a project",
        request=ProjectIn,
        responses={**done("Created.", 201), **errors(400, 401, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        self.require((System.PROJECT, Act.CREATE))
        body = ProjectIn(data=request.data)
        body.is_valid(raise_exception=True)
        if not body.validated_data.get("project_name"):
            raise serializers.ValidationError({"project_name": "required"})
        owner = None
        if self.principal.kind is Kind.USER and self.principal.user_id is not None:
            owner = get_user_model().objects.get(pk=self.principal.user_id)
        fields = {
            "name": body.validated_data["project_name"],
            "public": bool(body.visibility()),
            "quota_bytes": body.quota(None),
            "owner": owner,
            "actor": self.actor,
        }
        registry_id = body.validated_data.get("registry_id")
        if registry_id is not None:  # a proxy cache reaches out to a registry: admins only
            self.require((System.REPLICATION, Act.CREATE))
            project = proxy_project_create(registry_id=registry_id, **fields)
        else:
            project = project_create_owned(**fields)
        response = Response(status=201)
        response["Location"] = f"/api/v2.0/projects/{project.pk}"
        return response


def _project_page(view: ApiView, request: Request, projects) -> Response:
    response = paginate(request, projects, lambda p: p)
    page = response.data
    roles = roles_in_projects(view.principal, [p.pk for p in page])
    response.data = [project_out(p, roles.get(p.pk, [])) for p in page]
    return response


class ProjectView(ApiView):
    """GET, PUT (public flag, storage limit) and DELETE (only when empty) one project."""

    anonymous_reads = True

    @extend_schema(
        operation_id="getProject",
        summary="Get a project (by name or id)",
        responses={200: ProjectSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        found.repo_count = found.repositories.count()  # type: ignore[attr-defined]
        return Response(
            project_out(found, roles_in_projects(self.principal, [found.pk]).get(found.pk, []))
        )

    @extend_schema(
        operation_id="updateProject",
        summary="Change a project's visibility or storage limit",
        request=ProjectIn,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.PROJECT, Act.UPDATE), found)
        body = ProjectIn(data=request.data)
        body.is_valid(raise_exception=True)
        if body.quota(found.quota_bytes) != found.quota_bytes:
            self.require((Res.QUOTA, Act.UPDATE), found)  # quotas are the system admin's
        project_update(
            project=found,
            public=body.visibility(),
            quota_bytes=body.quota(found.quota_bytes),
            actor=self.actor,
        )
        return Response(status=200)

    @extend_schema(
        operation_id="deleteProject",
        summary="Delete an empty project",
        responses={**done(), **errors(401, 403, 404, 412)},
    )
    def delete(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.PROJECT, Act.DELETE), found)
        project_delete(project=found, actor=self.actor)
        return Response(status=200)


class ProjectSummaryView(ApiView):
    """Repository count, members per role, and the storage quota with its usage."""

    anonymous_reads = True

    @extend_schema(
        operation_id="getProjectSummary",
        summary="A project's repository count, members per role and quota",
        responses={200: ProjectSummarySerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.QUOTA, Act.READ), found)
        summary: dict[str, Any] = {
            "repo_count": found.repositories.count(),  # type: ignore[attr-defined]
            "quota": {
                "hard": {"storage": -1 if found.quota_bytes is None else found.quota_bytes},
                "used": {"storage": project_usage(project=found)},
            },
        }
        if self.may((Res.MEMBER, Act.LIST), found):
            counts = role_counts(found)
            for role, key in (
                (Role.PROJECT_ADMIN, "project_admin_count"),
                (Role.MAINTAINER, "maintainer_count"),
                (Role.DEVELOPER, "developer_count"),
                (Role.GUEST, "guest_count"),
                (Role.LIMITED_GUEST, "limited_guest_count"),
            ):
                summary[key] = counts[role]
        return Response(summary)


# --- members -------------------------------------------------------------------------------


class MemberIn(serializers.Serializer):
    role_id = serializers.ChoiceField(choices=sorted(ROLES_BY_ID))
    member_user = serializers.DictField(required=False)
    member_group = serializers.DictField(required=False)

    def subject(self) -> Subject:
        data = self.validated_data
        if data.get("member_user", {}).get("username"):
            return Subject("user", str(data["member_user"]["username"]))
        if data.get("member_group", {}).get("group_name"):
            return Subject("group", str(data["member_group"]["group_name"]))
        raise serializers.ValidationError(
            "name the member: member_user.username or member_group.group_name"
        )


class MemberExists(Exception):
    """The subject holds a role in the project already (409; PUT changes it)."""


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    entity_name = serializers.CharField()
    entity_type = serializers.ChoiceField(choices=["u", "g", "r"])
    entity_id = serializers.IntegerField()
    role_id = serializers.IntegerField()
    role_name = serializers.CharField()


class MemberRoleSerializer(serializers.Serializer):
    role_id = serializers.ChoiceField(choices=sorted(ROLES_BY_ID))


def member_out(binding: RoleBinding) -> dict[str, Any]:
    role = Role(binding.role)
    kind, _, name = binding.subject.partition(":")
    entity_id = binding.user_id or binding.group_id or binding.robot_id
    return {
        "id": binding.pk,
        "project_id": binding.project_id,
        "entity_name": name,
        "entity_type": {"user": "u", "group": "g", "robot": "r"}[kind],
        "entity_id": entity_id,
        "role_id": ROLE_IDS[role],
        "role_name": role.value,
    }


class MemberListView(ApiView):
    """GET the project's members (``entityname`` filters); POST adds a user or group."""

    @extend_schema(
        operation_id="listProjectMembers",
        summary="List a project's members",
        parameters=[
            OpenApiParameter("entityname", str, description="Part of a user or group name."),
            *page_parameters(),
            *PAGE_HEADERS,
        ],
        responses=listing(MemberSerializer, 400, 401, 403, 404),
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.MEMBER, Act.LIST), found)
        rows = RoleBinding.objects.filter(project=found).select_related("user", "group", "robot")
        rows = rows.order_by("id")
        wanted = request.query_params.get("entityname")
        if wanted:
            rows = rows.filter(user__username__icontains=wanted) | rows.filter(
                group__name__icontains=wanted
            )
        return paginate(request, rows, member_out)

    @extend_schema(
        operation_id="createProjectMember",
        summary="Add a user or group to a project",
        request=MemberIn,
        responses={**done("Created.", 201), **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.MEMBER, Act.CREATE), found)
        body = MemberIn(data=request.data)
        body.is_valid(raise_exception=True)
        subject = body.subject()
        if str(subject) in bindings_of(found):
            raise MemberExists(f"{subject} is a member of {found.name} already")
        if subject.kind == "group" and not Group.objects.filter(name=subject.name).exists():
            raise BindingInvalid(f"group {subject.name!r} does not exist")
        binding_set(
            project=found,
            subject=subject,
            role=ROLES_BY_ID[body.validated_data["role_id"]],
            actor=self.actor,
        )
        binding = RoleBinding.objects.filter(project=found).order_by("-id").first()
        response = Response(status=201)
        if binding is not None:
            response["Location"] = f"/api/v2.0/projects/{found.name}/members/{binding.pk}"
        return response


class MemberView(ApiView):
    """GET, PUT (role_id) and DELETE one member."""

    def _member(self, project: str, member_id: int, permission: tuple[str, str]) -> RoleBinding:
        found = self.visible_project(project)
        self.require(permission, found)
        binding = (
            RoleBinding.objects.filter(project=found, pk=member_id)
            .select_related("user", "group", "robot", "project")
            .first()
        )
        if binding is None:
            raise NotFound(f"no member {member_id} in project {found.name}")
        return binding

    @extend_schema(
        operation_id="getProjectMember",
        summary="Get a project member",
        responses={200: MemberSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, project: str, member_id: int) -> Response:
        return Response(member_out(self._member(project, member_id, (Res.MEMBER, Act.READ))))

    @extend_schema(
        operation_id="updateProjectMember",
        summary="Change a member's role",
        request=MemberRoleSerializer,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, project: str, member_id: int) -> Response:
        binding = self._member(project, member_id, (Res.MEMBER, Act.UPDATE))
        role_id = request.data.get("role_id") if isinstance(request.data, dict) else None
        if role_id not in ROLES_BY_ID:
            raise serializers.ValidationError({"role_id": f"one of {sorted(ROLES_BY_ID)}"})
        subject = Subject(*binding.subject.split(":", 1))
        binding_set(
            project=binding.project, subject=subject, role=ROLES_BY_ID[role_id], actor=self.actor
        )
        return Response(status=200)

    @extend_schema(
        operation_id="deleteProjectMember",
        summary="Remove a member from a project",
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, project: str, member_id: int) -> Response:
        binding = self._member(project, member_id, (Res.MEMBER, Act.DELETE))
        subject = Subject(*binding.subject.split(":", 1))
        binding_remove(project=binding.project, subject=subject, actor=self.actor)
        return Response(status=200)
