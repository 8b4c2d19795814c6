"""Top-level routes: the registry API and the service's own endpoints."""

from django.urls import include, path

from rbac import views as rbac_views
from rbac.views import TokenView

from . import views

urlpatterns = [
    path("", include("proxycache.urls")),  # /v2/: distribution, with proxy-cache reads
    path("healthz", views.healthz),
    path("service/token", TokenView.as_view()),
    path("api/v2.0/", include("api.urls")),
    # console: local logins, the profile with the CLI secret; SSO at login/oidc/, complete/oidc/
    path("login/", rbac_views.login_page),
    path("logout/", rbac_views.logout_page),
    path("profile/", rbac_views.profile_page),
    path("profile/cli-secret/", rbac_views.cli_secret_page),
    path("", include("social_django.urls", namespace="social")),
    path("", include("console.urls")),
]
