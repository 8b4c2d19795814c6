"""REST API of access control: ``POST /api/v2.0/apply``.

Errors are rendered by the REST API's one exception handler (api.errors).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import (
    ParseError,
    UnsupportedMediaType,
)
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from rbac.apply import change_as_dict, documents_apply, documents_parse

from .base import ApiView
from .schema import errors


class ApplyResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    changes = serializers.ListField(child=serializers.DictField())


JSON_TYPES = {"application/json"}
# A body without a type is read as YAML too: JSON documents are YAML as well.
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", ""}
FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}


class ApplyView(ApiView):
    """Apply project and role-binding documents (YAML or JSON); ``?dry_run=true`` writes nothing.

    rbac.apply authorizes each change.
    """

    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="apply",
        summary="Apply project and role-binding documents",
        parameters=[
            OpenApiParameter("dry_run", bool, description="Report the changes, make none.")
        ],
        request={"application/yaml": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT},
        responses={200: ApplyResultSerializer, **errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        principal = self.principal
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
            actor=self.actor,
            dry_run=dry_run,
        )
        return Response({"dry_run": dry_run, "changes": [change_as_dict(c) for c in changes]})
