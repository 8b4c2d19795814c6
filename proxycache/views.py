"""/v2/ reads of proxy-cache projects: the distribution views, with a miss sent upstream.

Access is decided first, as for any repository (RegistryView.dispatch); only
then does a read of a proxy-cache project look upstream.  Writes need no view
of their own: the distribution services refuse pushes into such projects.
"""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse

from distribution import selectors
from distribution.grammar import check_digest
from distribution.models import Manifest
from distribution.views import BlobView, ManifestView, ReferrersView

from .services import BlobFill, blob_local, blob_size, manifest_read, referrers_read
from .upstream import upstream_for


class ProxyManifestView(ManifestView):
    @staticmethod
    def _select(request, name: str, reference: str, *, with_body: bool = True) -> Manifest:
        upstream = upstream_for(name)
        if upstream is None:
            return ManifestView._select(request, name, reference, with_body=with_body)
        accept = selectors.parse_accept(request.META.get("HTTP_ACCEPT", ""))
        return manifest_read(
            upstream, name=name, reference=reference, accept=accept, with_body=with_body
        )


class ProxyBlobView(BlobView):
    def head(self, request, name: str, digest: str) -> HttpResponse:
        upstream = upstream_for(name)
        if upstream is None or blob_local(upstream, name=name, digest=digest):
            return super().head(request, name, digest)
        response = HttpResponse(content_type="application/octet-stream")
        response["Content-Length"] = str(blob_size(upstream, digest=digest))
        response["Docker-Content-Digest"] = digest
        return response

    def get(self, request, name: str, digest: str) -> HttpResponseBase:
        upstream = upstream_for(name)
        if upstream is None or blob_local(upstream, name=name, digest=digest):
            return super().get(request, name, digest)
        fill = BlobFill(upstream, name=name, digest=digest)
        # The fill itself, not an iterator of it: the server calls its close() when done.
        response = StreamingHttpResponse(fill, content_type="application/octet-stream")
        if fill.size >= 0:
            response["Content-Length"] = str(fill.size)
        response["Docker-Content-Digest"] = digest
        return response


class ProxyReferrersView(ReferrersView):
    def get(self, request, name: str, digest: str) -> HttpResponse:
        upstream = upstream_for(name)
        if upstream is not None:
            check_digest(digest)
            referrers_read(upstream, name=name, digest=digest)
        return super().get(request, name, digest)
