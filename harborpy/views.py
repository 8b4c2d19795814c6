"""Service endpoints of the harborpy process itself."""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse

from distribution.blobstore import blob_store


def healthz(request) -> JsonResponse:
    """Liveness and readiness: the database answers and the blob store can be listed."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"error: {error}"
    try:
        next(iter(blob_store().upload_ids()), None)
        checks["storage"] = "ok"
    except Exception as error:
        checks["storage"] = f"error: {error}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
