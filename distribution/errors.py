"""The one place that turns domain errors into OCI error responses.

    {"errors": [{"code": "...", "message": "...", "detail": ...}]}

Codes and statuses are the distribution spec's; PAGINATION_NUMBER_INVALID,
RANGE_INVALID and TAG_INVALID are the reference registry's additions that
clients know.
"""

from __future__ import annotations

import json

from django.http import HttpResponse

from . import exceptions as exc

# error class -> (code, HTTP status)
ERROR_TABLE: dict[type[exc.RegistryError], tuple[str, int]] = {
    exc.NameInvalid: ("NAME_INVALID", 400),
    exc.NameUnknown: ("NAME_UNKNOWN", 404),
    exc.TagInvalid: ("TAG_INVALID", 400),
    exc.DigestInvalid: ("DIGEST_INVALID", 400),
    exc.BlobUnknown: ("BLOB_UNKNOWN", 404),
    exc.UploadUnknown: ("BLOB_UPLOAD_UNKNOWN", 404),
    exc.UploadInvalid: ("BLOB_UPLOAD_INVALID", 400),
    exc.RangeInvalid: ("BLOB_UPLOAD_INVALID", 416),
    exc.BlobRangeInvalid: ("RANGE_INVALID", 416),
    exc.SizeInvalid: ("SIZE_INVALID", 400),
    exc.ManifestInvalid: ("MANIFEST_INVALID", 400),
    exc.ManifestTooLarge: ("MANIFEST_INVALID", 413),
    exc.ManifestUnknown: ("MANIFEST_UNKNOWN", 404),
    exc.ManifestBlobUnknown: ("MANIFEST_BLOB_UNKNOWN", 400),
    exc.ManifestReferenced: ("DENIED", 409),
    exc.TagImmutable: ("DENIED", 409),  # as Harbor answers an immutable tag
    exc.PaginationInvalid: ("PAGINATION_NUMBER_INVALID", 400),
    exc.Denied: ("DENIED", 403),
    exc.Unauthorized: ("UNAUTHORIZED", 401),
    exc.TooManyRequests: ("TOOMANYREQUESTS", 429),
    exc.QuotaExceeded: ("DENIED", 403),
    exc.Unsupported: ("UNSUPPORTED", 405),
    exc.RouteUnknown: ("UNSUPPORTED", 404),
    exc.InternalError: ("UNKNOWN", 500),
    # the reference registry's code for "try again later"
    exc.Unavailable: ("UNAVAILABLE", 503),
}


def error_response(error: exc.RegistryError) -> HttpResponse:
    """Render a domain error as the spec's JSON body with its status."""
    code, status = ERROR_TABLE[type(error)]
    status = error.status or status
    entry = {"code": code, "message": error.message, "detail": error.detail}
    response = HttpResponse(
        json.dumps({"errors": [entry]}), status=status, content_type="application/json"
    )
    if isinstance(error, exc.Unauthorized):
        response["WWW-Authenticate"] = error.challenge
    elif isinstance(error, exc.TooManyRequests | exc.Unavailable):
        response["Retry-After"] = str(error.retry_after)
    return response
