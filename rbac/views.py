"""The Docker token service (/service/token) and the console's login, logout and profile pages."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from audit.services import Actor

from .cli_secrets import cli_secret_get, cli_secret_regenerate
from .credentials import authenticate_basic, client_address, principal_from_request
from .exceptions import CredentialsInvalid, LoginFailed, LoginThrottled, ServiceUnknown
from .policy import Principal
from .services import user_authenticate
from .tokens import scope_parse, token_issue


@method_decorator(csrf_exempt, name="dispatch")
class TokenView(View):
    """Issues tokens to Basic-authenticated principals, or anonymously.

    GET follows the token spec (``service``, ``scope`` repeated, ``account``);
    POST follows its OAuth2 variant with ``grant_type=password``.
    """

    http_method_names = ["get", "post"]

    def get(self, request) -> HttpResponse:
        return self._issue(request, request.GET, lambda: principal_from_request(request))

    def post(self, request) -> HttpResponse:
        form = request.POST
        if form.get("grant_type") != "password":
            return _error(400, "UNSUPPORTED", "only grant_type=password is supported")

        def principal() -> Principal:
            if "username" not in form:
                return Principal()
            source = client_address(request)
            return authenticate_basic(form["username"], form.get("password", ""), source)

        return self._issue(request, form, principal)

    def _issue(self, request, params, principal_of) -> HttpResponse:
        try:
            scopes = [scope_parse(s) for text in params.getlist("scope") for s in text.split()]
        except CredentialsInvalid as error:
            return _error(400, "INVALID_REQUEST", str(error))
        try:
            body = token_issue(
                principal=principal_of(),
                scopes=scopes,
                service=params.get("service") or settings.HARBORPY_TOKEN_SERVICE,
            )
        except LoginThrottled as error:
            response = _error(429, "TOOMANYREQUESTS", str(error))
            response["Retry-After"] = str(error.retry_after)
            return response
        except (LoginFailed, CredentialsInvalid) as error:
            response = _error(401, "UNAUTHORIZED", str(error))
            response["WWW-Authenticate"] = f'Basic realm="{settings.HARBORPY_TOKEN_SERVICE}"'
            return response
        except ServiceUnknown as error:
            return _error(400, "INVALID_REQUEST", str(error))
        return HttpResponse(json.dumps(body), content_type="application/json")


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = {"errors": [{"code": code, "message": message, "detail": None}]}
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


# --- console pages: login, logout, profile ----------------------------------------------------

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@never_cache
@require_http_methods(["GET", "POST"])
def login_page(request) -> HttpResponse:
    """The login form (with the SSO button when OIDC is on); POST logs in with a password."""
    next_url = _next_url(request)
    if request.method == "GET":
        if request.user.is_authenticated:
            return redirect(next_url)
        return _login_form(request, next_url)
    username = request.POST.get("username", "").strip()
    if not username:
        return _login_form(request, next_url, error="Enter your user name.", status=400)
    try:
        user = user_authenticate(
            username=username,
            password=request.POST.get("password", ""),
            source=client_address(request),
            cli_secret=False,  # the CLI secret is for docker and scripts, not the console
        )
    except LoginThrottled as error:
        error_text = f"Too many failed logins; try again in {error.retry_after} seconds."
        response = _login_form(request, next_url, username, error=error_text, status=429)
        response["Retry-After"] = str(error.retry_after)
        return response
    except LoginFailed:
        error_text = "Wrong user name or password."
        return _login_form(request, next_url, username, error=error_text, status=401)
    # A user found by CLI secret comes without the backend that authenticate() notes.
    login(request, user, backend=getattr(user, "backend", MODEL_BACKEND))  # type: ignore[arg-type]
    return redirect(next_url)


@require_POST
def logout_page(request) -> HttpResponse:
    logout(request)
    return redirect(settings.LOGIN_URL)


@never_cache
@login_required
@require_http_methods(["GET"])
def profile_page(request) -> HttpResponse:
    """Who is logged in, their groups, and the CLI secret for docker login."""
    user = request.user
    context = {
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "cli_secret": cli_secret_get(user=user),
        "registry_host": urlsplit(settings.HARBORPY_EXTERNAL_URL).netloc or request.get_host(),
    }
    return render(request, "rbac/profile.html", context)


@login_required
@require_POST
def cli_secret_page(request) -> HttpResponse:
    """Replace the user's CLI secret; the old one stops working at once."""
    user = request.user
    cli_secret_regenerate(user=user, actor=Actor(user.get_username(), client_address(request)))
    messages.success(request, "A new CLI secret was made; the old one no longer works.")
    return redirect("/profile/")


def _login_form(
    request, next_url: str, username: str = "", *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "next": next_url,
        "username": username,
        "error": error,
        "oidc_name": settings.HARBORPY_OIDC_NAME if settings.HARBORPY_OIDC_ENDPOINT else "",
    }
    return render(request, "rbac/login.html", context, status=status)


def _next_url(request) -> str:
    """Where to go after logging in: ``next`` if it stays on this site, else the profile."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if allowed else settings.LOGIN_REDIRECT_URL
