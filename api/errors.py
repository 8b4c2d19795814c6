"""The REST API's one exception handler: domain errors to ``{"errors": [...]}`` and a status.

Every error of ``/api/v2.0/`` has Harbor's shape, with the HTTP status's name
as its code (``BAD_REQUEST``, ``UNAUTHORIZED``, ``FORBIDDEN``, ...).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import APIException, Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from audit.exceptions import PurgeBusy, PurgeInvalid
from distribution.exceptions import (
    ArtifactLabelExists,
    DigestInvalid,
    GCBusy,
    ImmutableRuleUnknown,
    LabelExists,
    LabelInvalid,
    LabelUnknown,
    ManifestReferenced,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RuleInvalid,
    ScheduleInvalid,
    TagExists,
    TagImmutable,
    TagInvalid,
)
from projects.exceptions import (
    ProjectExists,
    ProjectNameInvalid,
    ProjectNotEmpty,
    ProjectNotFound,
    QuotaInvalid,
)
from proxycache.projects import ProxyEndpointUnknown
from rbac.exceptions import (
    ApplyDenied,
    ApplyInvalid,
    BindingInvalid,
    CredentialsInvalid,
    GroupExists,
    GroupInvalid,
    LoginFailed,
    LoginThrottled,
    PasswordInvalid,
    PasswordWrong,
    RobotInvalid,
    UserChangeDenied,
    UserExists,
    UserInvalid,
)
from replication.client import ReplicationError
from replication.exceptions import EndpointExists, EndpointInUse, PolicyExists

from .projects import MemberExists

# Domain errors and their statuses; the first that matches wins.
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (LoginThrottled, 429),
    (LoginFailed, 401),
    (CredentialsInvalid, 401),
    (ApplyDenied, 403),
    (ApplyInvalid, 400),
    (ProjectExists, 409),
    (MemberExists, 409),
    (ProjectNameInvalid, 400),
    (QuotaInvalid, 400),
    (BindingInvalid, 400),
    (RobotInvalid, 400),
    (UserExists, 409),
    (GroupExists, 409),
    (UserChangeDenied, 403),
    (PasswordWrong, 403),
    (UserInvalid, 400),
    (PasswordInvalid, 400),
    (GroupInvalid, 400),
    (ProjectNotFound, 404),
    (ProjectNotEmpty, 412),
    (RequestDataTooBig, 413),
    (TagExists, 409),
    (GCBusy, 409),
    (PurgeBusy, 409),
    (PurgeInvalid, 400),
    (LabelExists, 409),
    (ArtifactLabelExists, 409),
    (LabelInvalid, 400),
    (LabelUnknown, 404),
    (NameInvalid, 400),
    (TagInvalid, 400),
    (DigestInvalid, 400),
    (NameUnknown, 404),
    (ManifestUnknown, 404),
    (ManifestReferenced, 412),
    (TagImmutable, 412),
    (RuleInvalid, 400),
    (ScheduleInvalid, 400),
    (ImmutableRuleUnknown, 404),
    (ProxyEndpointUnknown, 400),
    (EndpointExists, 409),
    (PolicyExists, 409),
    (EndpointInUse, 412),
    (ReplicationError, 400),  # invalid values, a ping that failed, a disabled policy started
)


def _messages(exc: Exception) -> list[str]:
    """One line per problem; a serializer's field errors as ``field: message``."""
    if not isinstance(exc, ValidationError):
        return [str(exc)]
    lines: list[str] = []

    def walk(detail: Any, path: str) -> None:
        if isinstance(detail, dict):
            for key, value in detail.items():
                walk(value, key if not path else f"{path}.{key}")
        elif isinstance(detail, list):
            for value in detail:
                walk(value, path)
        elif path and path != api_settings.NON_FIELD_ERRORS_KEY:
            lines.append(f"{path}: {detail}")
        else:
            lines.append(str(detail))

    walk(exc.detail, "")
    return lines or ["invalid request"]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The response for ``exc``, or None to let it become a 500."""
    if isinstance(exc, APIException):
        status = exc.status_code
    else:
        found = next((code for kind, code in STATUSES if isinstance(exc, kind)), None)
        if found is None:
            return None
        status = found
    messages = getattr(exc, "problems", None) or _messages(exc)
    code = HTTPStatus(status).name
    response = Response(
        {"errors": [{"code": code, "message": message} for message in messages]}, status=status
    )
    if status == 401:
        realm = f'Basic realm="{settings.HARBORPY_TOKEN_SERVICE}"'
        response["WWW-Authenticate"] = getattr(exc, "auth_header", None) or realm
    retry_after = getattr(exc, "retry_after", None) or (
        exc.wait if isinstance(exc, Throttled) else None
    )
    if retry_after:
        response["Retry-After"] = str(int(retry_after))
    return response
