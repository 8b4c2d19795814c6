"""User accounts: the caller's own (/users/current, its CLI secret), the admin's management
of all of them (/users[/{id}[/sysadmin|/password]]), and a name search for adding members."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.cli_secrets import cli_secret_get, cli_secret_regenerate
from rbac.policy import Kind, System
from rbac.roles import Act
from rbac.users import user_create, user_delete, user_set_admin, user_set_password, user_update

from .base import ApiView, paginate, q_filter, q_terms
from .schema import PAGE_HEADERS, done, errors, listing, page_parameters


class UserSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    realname = serializers.CharField(allow_blank=True)
    sysadmin_flag = serializers.BooleanField()
    creation_time = serializers.DateTimeField()
    groups = serializers.ListField(child=serializers.CharField())


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(write_only=True)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    realname = serializers.CharField(required=False, allow_blank=True, default="")


class UserProfileSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    realname = serializers.CharField(required=False, allow_blank=True)


class SysAdminFlagSerializer(serializers.Serializer):
    sysadmin_flag = serializers.BooleanField()


class PasswordReqSerializer(serializers.Serializer):
    old_password = serializers.CharField(
        required=False, help_text="Required when changing one's own password."
    )
    new_password = serializers.CharField()


class UserSearchSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()


class CliSecretSerializer(serializers.Serializer):
    secret = serializers.CharField()


def user_out(user) -> dict[str, Any]:
    return {
        "user_id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "realname": user.get_full_name(),
        "sysadmin_flag": bool(user.is_superuser),
        "creation_time": user.date_joined.isoformat(),
        "groups": sorted(g.name for g in user.groups.all()),
    }


class CurrentUserMixin(ApiView):
    def current_user(self):
        if self.principal.kind is not Kind.USER or self.principal.user_id is None:
            raise PermissionDenied("only user accounts have a profile (robots and tokens do not)")
        return get_user_model().objects.get(pk=self.principal.user_id)


class CurrentUserView(CurrentUserMixin):
    @extend_schema(
        operation_id="getCurrentUserInfo",
        summary="The caller's account",
        responses={200: UserSerializer, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        return Response(user_out(self.current_user()))


class CliSecretView(CurrentUserMixin):
    """GET shows the caller's CLI secret; POST replaces it (the old one stops working)."""

    @extend_schema(
        operation_id="getCurrentUserCliSecret",
        summary="The caller's CLI secret",
        responses={200: CliSecretSerializer, **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        return Response({"secret": cli_secret_get(user=self.current_user())})

    @extend_schema(
        operation_id="refreshCurrentUserCliSecret",
        summary="Replace the caller's CLI secret",
        request=None,
        responses={200: CliSecretSerializer, **errors(401, 403)},
    )
    def post(self, request: Request) -> Response:
        secret = cli_secret_regenerate(user=self.current_user(), actor=self.actor)
        return Response({"secret": secret})


# --- the admin's user management ------------------------------------------------------------


class UserListView(ApiView):
    """GET every user (q: username, email); POST creates a local user.  Admin only."""

    @extend_schema(
        operation_id="listUsers",
        summary="List users",
        parameters=[*page_parameters("username", "email"), *PAGE_HEADERS],
        responses=listing(UserSerializer, 400, 401, 403),
    )
    def get(self, request: Request) -> Response:
        self.require((System.USER, Act.LIST))
        terms = q_terms(request, ("username", "email"))
        users = get_user_model().objects.prefetch_related("groups").order_by("username")
        users = q_filter(users, terms, {"username": "username", "email": "email"})
        return paginate(request, users, user_out)

    @extend_schema(
        operation_id="createUser",
        summary="Create a local user",
        request=UserCreateSerializer,
        responses={**done("Created.", 201), **errors(400, 401, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        self.require((System.USER, Act.CREATE))
        body = UserCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = user_create(**body.validated_data, actor=self.actor)
        response = Response(status=201)
        response["Location"] = f"/api/v2.0/users/{user.pk}"
        return response


class UserLookup(ApiView):
    def user(self, user_id: int, action: Act):
        self.require((System.USER, action))
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user


class UserView(UserLookup):
    """GET, PUT (email, realname) and DELETE one user.  Admin only."""

    @extend_schema(
        operation_id="getUser",
        summary="Get a user",
        responses={200: UserSerializer, **errors(401, 403, 404)},
    )
    def get(self, request: Request, user_id: int) -> Response:
        return Response(user_out(self.user(user_id, Act.READ)))

    @extend_schema(
        operation_id="updateUserProfile",
        summary="Change a user's profile",
        request=UserProfileSerializer,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, user_id: int) -> Response:
        user = self.user(user_id, Act.UPDATE)
        body = UserProfileSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user_update(user=user, **body.validated_data, actor=self.actor)
        return Response(status=200)

    @extend_schema(
        operation_id="deleteUser",
        summary="Delete a user",
        responses={**done(), **errors(401, 403, 404)},
    )
    def delete(self, request: Request, user_id: int) -> Response:
        user_delete(user=self.user(user_id, Act.DELETE), actor=self.actor)
        return Response(status=200)


class UserSysAdminView(UserLookup):
    @extend_schema(
        operation_id="setUserSysAdmin",
        summary="Make a user a system administrator, or not",
        request=SysAdminFlagSerializer,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, user_id: int) -> Response:
        user = self.user(user_id, Act.UPDATE)
        body = SysAdminFlagSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user_set_admin(user=user, admin=body.validated_data["sysadmin_flag"], actor=self.actor)
        return Response(status=200)


class UserPasswordView(ApiView):
    """The admin sets anyone's password; a user changes their own with the old one."""

    @extend_schema(
        operation_id="updateUserPassword",
        summary="Change a user's password",
        request=PasswordReqSerializer,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def put(self, request: Request, user_id: int) -> Response:
        own = self.principal.kind is Kind.USER and self.principal.user_id == user_id
        if not own:
            self.require((System.USER, Act.UPDATE))
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is None:
            raise NotFound(f"user {user_id} not found")
        body = PasswordReqSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        old = body.validated_data.get("old_password")
        if own and old is None:
            raise serializers.ValidationError({"old_password": "required to change your own"})
        user_set_password(
            user=user,
            new_password=body.validated_data["new_password"],
            old_password=old if own else None,
            actor=self.actor,
        )
        return Response(status=200)


class UserSearchView(ApiView):
    """Names and ids of users whose name contains ``username``: for adding members."""

    @extend_schema(
        operation_id="searchUsers",
        summary="Search users by name",
        parameters=[
            OpenApiParameter("username", str, required=True, description="Part of the name."),
            *page_parameters(),
            *PAGE_HEADERS,
        ],
        responses={
            200: OpenApiResponse(UserSearchSerializer(many=True), description="One page."),
            **errors(400, 401, 403),
        },
    )
    def get(self, request: Request) -> Response:
        if self.principal.kind is not Kind.USER:
            raise PermissionDenied("only users search for users")
        wanted = request.query_params.get("username", "").strip()
        if not wanted:
            raise serializers.ValidationError({"username": "required"})
        users = get_user_model().objects.filter(username__icontains=wanted).order_by("username")
        return paginate(
            request,
            users.only("pk", "username"),
            lambda u: {"user_id": u.pk, "username": u.get_username()},
        )
