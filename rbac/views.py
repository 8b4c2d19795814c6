"""The Docker token service endpoint: GET (and OAuth2 POST) /service/token."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .credentials import authenticate_basic, client_address, principal_from_request
from .exceptions import CredentialsInvalid, LoginFailed, LoginThrottled, ServiceUnknown
from .policy import Principal
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
