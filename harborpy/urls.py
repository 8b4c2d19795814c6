"""Top-level routes: the registry API and the service's own endpoints."""

from django.urls import include, path

from rbac.api import ApplyView
from rbac.views import TokenView

from . import views

urlpatterns = [
    path("", include("distribution.urls")),
    path("healthz", views.healthz),
    path("service/token", TokenView.as_view()),
    path("api/v2.0/apply", ApplyView.as_view()),
]
