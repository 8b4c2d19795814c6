"""What the OpenAPI document says beyond the views themselves: errors, pages, filters.

Views annotate their handlers with ``extend_schema``; these helpers keep the
shared parts (the error body, paging parameters and headers) in one place.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

ERROR_TEXT = {
    400: "Malformed request or invalid values.",
    401: "Authentication required, or bad credentials.",
    403: "The caller may not do this.",
    404: "No such resource (or the caller may not see it).",
    409: "It exists already.",
    412: "Its precondition fails (e.g. the project is not empty).",
}


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The HTTP status's name: BAD_REQUEST, FORBIDDEN...")
    message = serializers.CharField()


class ErrorsSerializer(serializers.Serializer):
    errors = ErrorSerializer(many=True)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Responses for error statuses, all of Harbor's ``{"errors": [...]}`` shape."""
    return {
        status: OpenApiResponse(ErrorsSerializer, description=ERROR_TEXT[status])
        for status in statuses
    }


def page_parameters(*filters: str, doc: str = "") -> list[OpenApiParameter]:
    """``page``, ``page_size`` and, when a list filters, ``q`` naming its keys."""
    parameters = [
        OpenApiParameter("page", OpenApiTypes.INT, description="Page number, from 1."),
        OpenApiParameter("page_size", OpenApiTypes.INT, description="1 to 100; default 10."),
    ]
    if filters:
        keys = ", ".join(filters)
        parameters.append(
            OpenApiParameter(
                "q",
                OpenApiTypes.STR,
                description=(
                    f"Filters, comma-joined: key=value (exact) or key=~value (fuzzy); "
                    f"keys: {keys}. {doc}"
                ).strip(),
            )
        )
    return parameters


PAGE_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        OpenApiTypes.INT,
        location=OpenApiParameter.HEADER,
        response=[200],
        description="How many items match, on all pages.",
    ),
    OpenApiParameter(
        "Link",
        OpenApiTypes.STR,
        location=OpenApiParameter.HEADER,
        response=[200],
        description='The previous and next pages: <url>; rel="prev", <url>; rel="next".',
    ),
]


def location(description: str) -> OpenApiParameter:
    """The ``Location`` header of a 201: where the new resource is."""
    return OpenApiParameter(
        "Location",
        OpenApiTypes.STR,
        location=OpenApiParameter.HEADER,
        response=[201],
        description=description,
    )


def listing(item: Any, *statuses: int) -> dict[int, Any]:
    """The responses of a paged list of ``item``: 200 with an array, and the errors."""
    return {200: OpenApiResponse(item(many=True), description="One page."), **errors(*statuses)}


def done(description: str = "Done.", status: int = 200) -> dict[int, OpenApiResponse]:
    """A success with no body."""
    return {status: OpenApiResponse(description=description)}
