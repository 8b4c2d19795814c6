"""User groups in Harbor's shapes: /api/v2.0/usergroups[/{id}|/search].

The system admin lists and manages groups; any logged-in user may search
them by name (to add one as a project member).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.groups import group_create, group_delete, group_rename, group_type_of
from rbac.models import GroupType
from rbac.policy import Kind, System
from rbac.roles import Act

from .base import ApiView, paginate, q_filter, q_terms
from .schema import PAGE_HEADERS, done, errors, listing, page_parameters

GROUP_TYPES = [t for t, _ in GroupType.CHOICES]


class UserGroupSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    group_name = serializers.CharField()
    group_type = serializers.ChoiceField(
        choices=GROUP_TYPES, help_text="1: LDAP, 2: HTTP (made here), 3: OIDC."
    )
    ldap_group_dn = serializers.CharField(allow_blank=True)


class UserGroupCreateSerializer(serializers.Serializer):
    group_name = serializers.CharField(max_length=150)
    group_type = serializers.ChoiceField(choices=GROUP_TYPES, default=GroupType.HTTP)


class UserGroupRenameSerializer(serializers.Serializer):
    group_name = serializers.CharField(max_length=150)


class UserGroupSearchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    group_name = serializers.CharField()
    group_type = serializers.ChoiceField(choices=GROUP_TYPES)


def group_out(group: Group) -> dict[str, Any]:
    return {
        "id": group.pk,
        "group_name": group.name,
        "group_type": group_type_of(group),
        "ldap_group_dn": "",
    }


def _groups():
    return Group.objects.select_related("kind").order_by("name")


class UserGroupListView(ApiView):
    """GET every group (q: group_name); POST creates one.  Admin only."""

    @extend_schema(
        operation_id="listUserGroups",
        summary="List user groups",
        parameters=[*page_parameters("group_name"), *PAGE_HEADERS],
        responses=listing(UserGroupSerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.GROUP, Act.LIST))
        groups = q_filter(_groups(), q_terms(request, ("group_name",)), {"group_name": "name"})
        return paginate(request, groups, group_out)

    @extend_schema(
        operation_id="createUserGroup",
        summary="Create a user group",
        request=UserGroupCreateSerializer,
        responses={**done("Created.", 201), **errors(400, 401, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        self.require((System.GROUP, Act.CREATE))
        body = UserGroupCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        group = group_create(
            name=body.validated_data["group_name"],
            group_type=body.validated_data["group_type"],
            actor=self.actor,
        )
        response = Response(status=201)
        response["Location"] = f"/api/v2.0/usergroups/{group.pk}"
        return response


class UserGroupView(ApiView):
    """GET, PUT (a new name) and DELETE one group.  Admin only."""

    def group(self, group_id: int, action: Act) -> Group:
        self.require((System.GROUP, action))
        group = _groups().filter(pk=group_id).first()
        if group is None:
            raise NotFound(f"user group {group_id} not found")
        return group

    @extend_schema(
        operation_id="getUserGroup",
        summary="Get a user group",
        responses={200: UserGroupSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, group_id: int) -> Response:
        return Response(group_out(self.group(group_id, Act.READ)))

    @extend_schema(
        operation_id="updateUserGroup",
        summary="Rename a user group",
        request=UserGroupRenameSerializer,
        responses={**done(), **errors(400, 401, 403, 404, 409)},
    )
    def put(self, request: Request, group_id: int) -> Response:
        group = self.group(group_id, Act.UPDATE)
        body = UserGroupRenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        group_rename(group=group, name=body.validated_data["group_name"], actor=self.actor)
        return Response(status=200)

    @extend_schema(
        operation_id="deleteUserGroup",
        summary="Delete a user group",
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, group_id: int) -> Response:
        group_delete(group=self.group(group_id, Act.DELETE), actor=self.actor)
        return Response(status=200)


class UserGroupSearchView(ApiView):
    """Groups whose name contains ``groupname``: for adding members.  Any logged-in user."""

    @extend_schema(
        operation_id="searchUserGroups",
        summary="Search user groups by name",
        parameters=[
            OpenApiParameter("groupname", str, required=True, description="Part of the name."),
            *page_parameters(),
            *PAGE_HEADERS,
        ],
        responses={
            200: OpenApiResponse(UserGroupSearchSerializer(many=True), description="One page."),
            **errors(400, 401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        if self.principal.kind is not Kind.USER:
            raise PermissionDenied("only users search for groups")
        wanted = request.query_params.get("groupname", "").strip()
        if not wanted:
            raise serializers.ValidationError({"groupname": "required"})
        groups = _groups().filter(name__icontains=wanted)
        return paginate(
            request,
            groups,
            lambda g: {"id": g.pk, "group_name": g.name, "group_type": group_type_of(g)},
        )
