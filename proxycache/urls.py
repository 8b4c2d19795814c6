"""The /v2/ routes, with the manifest, blob and referrers reads of proxy-cache projects going
upstream."""

from distribution.urls import registry_patterns

from . import views

urlpatterns = registry_patterns(
    manifest=views.ProxyManifestView,
    blob=views.ProxyBlobView,
    referrers=views.ProxyReferrersView,
)
