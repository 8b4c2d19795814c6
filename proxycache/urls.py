"""The /v2/ routes, with the manifest and blob reads of proxy-cache projects going upstream."""

from distribution.urls import registry_patterns

from . import views

urlpatterns = registry_patterns(manifest=views.ProxyManifestView, blob=views.ProxyBlobView)
