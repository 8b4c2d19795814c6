"""The OCI distribution API on /v2/: thin views over services and selectors.

``RegistryView.dispatch`` is the chokepoint: it checks the name, asks the
access policy, and renders every domain error through ``errors``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import FileResponse, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from audit.services import Actor, audit_pull
from rbac.credentials import client_address

from . import selectors, services
from .access import enforce, may_mount_from
from .blobstore import blob_store
from .bodies import body_chunks, body_length, has_body
from .errors import error_response
from .exceptions import (
    BlobRangeInvalid,
    BlobUnknown,
    DigestInvalid,
    InternalError,
    ManifestTooLarge,
    RangeInvalid,
    RegistryError,
    RouteUnknown,
    SizeInvalid,
    Unsupported,
    UploadInvalid,
)
from .grammar import check_digest, check_name, is_digest, reference_name
from .models import Manifest, Upload
from .pulls import pull_record
from .storage import BlobMissing, BlobReader

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
logger = logging.getLogger(__name__)


@method_decorator(csrf_exempt, name="dispatch")
class RegistryView(View):
    """Base of every /v2/ view: name check, one access decision, OCI errors."""

    route = ""

    def dispatch(self, request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponseBase
        try:
            name = kwargs.get("name")
            if name is not None:
                check_name(name)
            request.principal = enforce(request, self.route, name)
            response = super().dispatch(request, *args, **kwargs)
        except RegistryError as error:
            response = error_response(error)
            if isinstance(error, RangeInvalid):
                _upload_headers(response, error.upload)
            elif isinstance(error, BlobRangeInvalid):
                response["Content-Range"] = f"bytes */{error.size}"
            elif isinstance(error, Unsupported):
                allowed = [m.upper() for m in self.http_method_names if hasattr(self, m)]
                response["Allow"] = ", ".join(allowed)
        except Exception as error:  # a bug or a broken backend: still the spec's JSON
            logger.exception("%s %s failed", request.method, request.path)
            response = error_response(InternalError(f"internal error: {type(error).__name__}"))
        for header, value in API_VERSION.items():
            response[header] = value
        return response

    def http_method_not_allowed(self, request, *args: Any, **kwargs: Any) -> HttpResponse:
        raise Unsupported(f"{request.method} is not supported here")


class BaseView(RegistryView):
    route = "base"

    def get(self, request) -> HttpResponse:
        return _json({})


class UnknownRouteView(RegistryView):
    """Anything under /v2/ that is no endpoint of the API."""

    route = "unknown"
    http_method_names = ["get", "head", "post", "put", "patch", "delete", "options"]

    def dispatch(self, request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        kwargs.pop("rest", None)
        return super().dispatch(request, *args, **kwargs)

    def _unknown(self, request, *args: Any, **kwargs: Any) -> HttpResponse:
        raise RouteUnknown(f"no such endpoint: {request.path}")

    get = head = post = put = patch = delete = options = _unknown


class CatalogView(RegistryView):
    route = "catalog"

    def get(self, request) -> HttpResponse:
        page = selectors.catalog(n=request.GET.get("n"), last=request.GET.get("last"))
        response = _json({"repositories": page.items})
        _link_next(response, "/v2/_catalog", page)
        return response


class TagsView(RegistryView):
    route = "tags"

    def get(self, request, name: str) -> HttpResponse:
        page = selectors.tags_list(
            repository_name=name, n=request.GET.get("n"), last=request.GET.get("last")
        )
        response = _json({"name": name, "tags": page.items})
        _link_next(response, f"/v2/{name}/tags/list", page)
        return response


class ManifestView(RegistryView):
    route = "manifest"

    def get(self, request, name: str, reference: str) -> HttpResponse:
        manifest = self._select(request, name, reference)
        response = HttpResponse(bytes(manifest.body), content_type=manifest.media_type)
        audit_pull(
            actor=_actor(request),
            resource=reference_name(name, reference),
            detail={"digest": manifest.digest},
        )
        pull_record(
            repository_id=manifest.repository_id,
            manifest_id=manifest.pk,
            tag=None if is_digest(reference) else reference,
        )
        return _manifest_headers(response, manifest)

    def head(self, request, name: str, reference: str) -> HttpResponse:
        manifest = self._select(request, name, reference, with_body=False)
        response = HttpResponse(content_type=manifest.media_type)
        return _manifest_headers(response, manifest)

    def put(self, request, name: str, reference: str) -> HttpResponse:
        length = body_length(request)
        limit = settings.HARBORPY_MANIFEST_MAX_BYTES
        if length is not None and length > limit:  # refuse before reading the body
            raise ManifestTooLarge(
                f"manifest is larger than {limit} bytes", detail={"size": length}
            )
        body = b"".join(_bounded(body_chunks(request), limit))
        manifest = services.manifest_put(
            repository_name=name,
            reference=reference,
            content_type=request.META.get("CONTENT_TYPE"),
            body=body,
            actor=_actor(request),
        )
        response = _empty(201)
        response["Location"] = f"/v2/{name}/manifests/{manifest.digest}"
        response["Docker-Content-Digest"] = manifest.digest
        if manifest.subject_digest:
            response["OCI-Subject"] = manifest.subject_digest
        return response

    def delete(self, request, name: str, reference: str) -> HttpResponse:
        services.manifest_delete(repository_name=name, reference=reference, actor=_actor(request))
        return _empty(202)

    @staticmethod
    def _select(request, name: str, reference: str, *, with_body: bool = True) -> Manifest:
        accept = selectors.parse_accept(request.META.get("HTTP_ACCEPT", ""))
        return selectors.manifest_get(
            repository_name=name, reference=reference, accept=accept, with_body=with_body
        )


class BlobView(RegistryView):
    route = "blob"

    def head(self, request, name: str, digest: str) -> HttpResponse:
        blob = services.blob_head(repository_name=name, digest=digest)
        response = HttpResponse(content_type="application/octet-stream")
        response["Content-Length"] = str(blob.size)
        response["Docker-Content-Digest"] = digest
        response["Accept-Ranges"] = "bytes"
        return response

    def get(self, request, name: str, digest: str) -> HttpResponseBase:
        size = selectors.blob_get(repository_name=name, digest=digest).size
        byte_range = _parse_range(request.META.get("HTTP_RANGE"), size)
        store = blob_store()
        if settings.HARBORPY_STORAGE_REDIRECT and byte_range is None:
            url = store.blob_url(digest, settings.HARBORPY_STORAGE_REDIRECT_TTL)
            if url:
                redirect = _empty(307)
                redirect["Location"] = url
                redirect["Docker-Content-Digest"] = digest
                return redirect
        start, length = byte_range if byte_range else (0, size)
        try:
            reader = store.blob_open(digest, start, length)
        except BlobMissing:
            raise BlobUnknown("blob unknown to registry", detail={"digest": digest}) from None
        if reader.file is not None:
            # FileResponse hands the open file to the server's sendfile; the server
            # sends Content-Length bytes from the file's current position.
            response: HttpResponseBase = FileResponse(
                reader.file, content_type="application/octet-stream"
            )
        else:
            response = StreamingHttpResponse(
                _closing(reader), content_type="application/octet-stream"
            )
        response["Content-Length"] = str(length)
        response["Docker-Content-Digest"] = digest
        response["Accept-Ranges"] = "bytes"
        if byte_range:
            response.status_code = 206
            response["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        return response

    def delete(self, request, name: str, digest: str) -> HttpResponse:
        check_digest(digest)
        services.blob_delete(repository_name=name, digest=digest, actor=_actor(request))
        return _empty(202)


class UploadStartView(RegistryView):
    route = "upload"

    def post(self, request, name: str) -> HttpResponse:
        mount, source = request.GET.get("mount"), request.GET.get("from")
        if mount and source:
            check_digest(mount)
            check_name(source)
        if mount and source and may_mount_from(request, source):
            blob = services.blob_mount(repository_name=name, digest=mount, from_name=source)
            if blob is not None:
                return _blob_created(name, blob.digest)
        digest = request.GET.get("digest")
        if digest:  # monolithic upload: the whole blob in this request
            blob = services.upload_monolithic(
                repository_name=name, digest=digest, chunks=body_chunks(request)
            )
            return _blob_created(name, blob.digest)
        if has_body(request):
            raise UploadInvalid("a POST with a body needs ?digest=")
        upload = services.upload_start(repository_name=name)
        return _upload_response(upload, status=202)


class UploadView(RegistryView):
    route = "upload"

    def get(self, request, name: str, upload_id: str) -> HttpResponse:
        upload = services.upload_get(repository_name=name, upload_id=upload_id)
        return _upload_response(upload, status=204)

    def patch(self, request, name: str, upload_id: str) -> HttpResponse:
        upload = services.upload_get(repository_name=name, upload_id=upload_id)
        start = _content_range_start(request, upload)
        upload = services.upload_append(upload=upload, chunks=body_chunks(request), start=start)
        return _upload_response(upload, status=202)

    def put(self, request, name: str, upload_id: str) -> HttpResponse:
        digest = request.GET.get("digest")
        if not digest:
            raise DigestInvalid("completing an upload needs ?digest=")
        check_digest(digest)
        upload = services.upload_get(repository_name=name, upload_id=upload_id)
        start = _content_range_start(request, upload)
        chunks = body_chunks(request) if has_body(request) else None
        blob = services.upload_complete(upload=upload, digest=digest, chunks=chunks, start=start)
        return _blob_created(name, blob.digest)

    def delete(self, request, name: str, upload_id: str) -> HttpResponse:
        upload = services.upload_get(repository_name=name, upload_id=upload_id)
        services.upload_cancel(upload=upload)
        return _empty(204)


class ReferrersView(RegistryView):
    route = "referrers"

    def get(self, request, name: str, digest: str) -> HttpResponse:
        artifact_type = request.GET.get("artifactType")
        index = selectors.referrers(
            repository_name=name, digest=digest, artifact_type=artifact_type
        )
        response = _json(index, content_type="application/vnd.oci.image.index.v1+json")
        if artifact_type:
            response["OCI-Filters-Applied"] = "artifactType"
        return response


# --- helpers -------------------------------------------------------------------------------


def _actor(request) -> Actor:
    """Who the audit log says did it: the principal's name and the client's address."""
    return Actor(request.principal.name or "anonymous", client_address(request))


def _json(data: Any, content_type: str = "application/json") -> HttpResponse:
    return HttpResponse(json.dumps(data), content_type=content_type)


def _manifest_headers(response: HttpResponse, manifest: Manifest) -> HttpResponse:
    response["Content-Length"] = str(manifest.size)
    response["Docker-Content-Digest"] = manifest.digest
    response["ETag"] = f'"{manifest.digest}"'
    return response


def _empty(status: int) -> HttpResponse:
    """A response without a body (and so without Django's default text/html type)."""
    response = HttpResponse(status=status)
    del response["Content-Type"]
    response["Content-Length"] = "0"
    return response


def _blob_created(name: str, digest: str) -> HttpResponse:
    response = _empty(201)
    response["Location"] = f"/v2/{name}/blobs/{digest}"
    response["Docker-Content-Digest"] = digest
    return response


def _upload_response(upload: Upload, *, status: int) -> HttpResponse:
    return _upload_headers(_empty(status), upload)


def _upload_headers(response: HttpResponse, upload: Upload) -> HttpResponse:
    response["Location"] = f"/v2/{upload.repository_name}/blobs/uploads/{upload.id}"
    # The last byte stored; 0-0 for an empty upload, as clients expect.
    response["Range"] = f"0-{max(upload.size - 1, 0)}"
    response["Docker-Upload-UUID"] = upload.id
    return response


def _content_range_start(request, upload: Upload) -> int | None:
    """First offset of a Content-Range (`<start>-<end>`), checked against Content-Length."""
    value = request.META.get("HTTP_CONTENT_RANGE")
    if not value:
        return None
    text = value.strip().removeprefix("bytes").strip().split("/", 1)[0]
    try:
        start_text, end_text = text.split("-", 1)
        start, end = int(start_text), int(end_text)
    except ValueError:
        raise RangeInvalid(f"malformed Content-Range {value!r}", upload=upload) from None
    if start < 0 or end < start:
        raise RangeInvalid(f"invalid Content-Range {value!r}", upload=upload)
    length = body_length(request)
    if length is not None and length != end - start + 1:
        raise SizeInvalid(
            f"Content-Range {value!r} covers {end - start + 1} bytes, Content-Length is {length}"
        )
    return start


def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(start, length) of a single `bytes=` range, None for the whole blob."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[6:].strip().partition("-")
    try:
        if first == "":  # suffix range: the last N bytes
            length = min(int(last), size)
            return (size - length, length) if length > 0 else None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        raise BlobRangeInvalid(f"range {value!r} is outside the blob's {size} bytes", size=size)
    end = min(end, size - 1)
    return start, end - start + 1


def _closing(reader: BlobReader) -> Iterator[bytes]:
    """The reader's chunks; the server closes this generator, which releases the reader."""
    try:
        yield from reader.chunks
    finally:
        reader.close()


def _bounded(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise ManifestTooLarge(f"manifest is larger than {limit} bytes")
        yield chunk


def _link_next(response: HttpResponse, path: str, page: selectors.Page) -> None:
    if page.next_last is not None:
        query = urlencode({"n": page.n, "last": page.next_last})
        response["Link"] = f'<{quote(path)}?{query}>; rel="next"'
