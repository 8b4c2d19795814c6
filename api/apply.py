"""REST API of access control: ``POST /api/v2.0/apply``.

Errors are rendered by the REST API's one exception handler (api.errors).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from rest_framework.authentication import CSRFCheck
from rest_framework.exceptions import (
    NotAuthenticated,
    ParseError,
    PermissionDenied,
    UnsupportedMediaType,
)
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import Actor
from rbac.apply import change_as_dict, documents_apply, documents_parse
from rbac.credentials import client_address, principal_from_request
from rbac.policy import Principal

JSON_TYPES = {"application/json"}
# A body without a type is read as YAML too: JSON documents are YAML as well.
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", ""}
FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}


def api_principal(request: Request) -> Principal:
    """The authenticated caller: Basic, bearer or the console session (which must carry CSRF).

    Bad credentials raise LoginFailed, LoginThrottled or CredentialsInvalid;
    none at all raise NotAuthenticated.
    """
    django_request: HttpRequest = request._request
    principal = principal_from_request(django_request, sessions=True)
    if principal.is_anonymous:
        raise NotAuthenticated("authentication required: Basic credentials, a token or a session")
    if not django_request.META.get("HTTP_AUTHORIZATION"):
        # From the session cookie, which a browser sends on any site's behalf.
        check = CSRFCheck(lambda _: None)  # type: ignore[arg-type,return-value]
        check.process_request(django_request)
        reason = check.process_view(django_request, None, (), {})  # type: ignore[arg-type]
        if reason:
            raise PermissionDenied(f"CSRF failed: {reason}")
    return principal


class ApplyView(APIView):
    """Apply project and role-binding documents (YAML or JSON); ``?dry_run=true`` writes nothing."""

    authentication_classes: list[type] = []  # api_principal: throttled, audited logins
    permission_classes: list[type] = []  # rbac.apply authorizes each change
    renderer_classes = [JSONRenderer]

    def perform_authentication(self, request: Request) -> None:
        """Nothing: DRF would set the Django request's user to anonymous, hiding the session."""

    def get_authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{settings.HARBORPY_TOKEN_SERVICE}"'

    def post(self, request: Request) -> Response:
        principal = api_principal(request)
        dry_run = FLAGS.get(request.query_params.get("dry_run", "").lower())
        if dry_run is None:
            raise ParseError("dry_run must be true or false")
        media_type = (request.content_type or "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES | YAML_TYPES:
            raise UnsupportedMediaType(media_type, "send application/yaml or application/json")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("the body is not UTF-8 text") from None
        changes = documents_apply(
            documents=documents_parse(text, json_body=media_type in JSON_TYPES),
            principal=principal,
            actor=Actor(principal.subject, client_address(request)),
            dry_run=dry_run,
        )
        return Response({"dry_run": dry_run, "changes": [change_as_dict(c) for c in changes]})
