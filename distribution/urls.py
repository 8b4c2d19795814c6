"""Routes of the OCI distribution API.

Repository names contain slashes, so each route anchors on its fixed suffix;
upload routes come before the blob route they would otherwise match.
"""

from django.urls import URLPattern, re_path
from django.views import View

from . import views

NAME = r"(?P<name>[^?#]+?)"


def registry_patterns(
    *,
    manifest: type[View] = views.ManifestView,
    blob: type[View] = views.BlobView,
    referrers: type[View] = views.ReferrersView,
) -> list[URLPattern]:
    """The routes, with other views for manifests and blobs where an app above needs them."""
    return [
        re_path(r"^v2/?$", views.BaseView.as_view()),
        re_path(r"^v2/_catalog$", views.CatalogView.as_view()),
        re_path(rf"^v2/{NAME}/tags/list$", views.TagsView.as_view()),
        re_path(rf"^v2/{NAME}/manifests/(?P<reference>[^/]+)$", manifest.as_view()),
        re_path(rf"^v2/{NAME}/blobs/uploads/?$", views.UploadStartView.as_view()),
        re_path(rf"^v2/{NAME}/blobs/uploads/(?P<upload_id>[^/]+)$", views.UploadView.as_view()),
        re_path(rf"^v2/{NAME}/blobs/(?P<digest>[^/]+)$", blob.as_view()),
        re_path(rf"^v2/{NAME}/referrers/(?P<digest>[^/]+)$", referrers.as_view()),
        re_path(r"^v2/(?P<rest>.*)$", views.UnknownRouteView.as_view()),
    ]


urlpatterns = registry_patterns()
