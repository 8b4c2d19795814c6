"""What every /api/v2.0/ view shares: who is asking, one authorization call, pages, filters.

Views subclass ``ApiView``; ``self.principal`` is worked out once per request
(Basic, bearer, or the console session with CSRF; anonymous is allowed where a
view says so), ``self.require(...)`` asks ``rbac.policy.authorize`` and raises
the right error, and ``paginate`` answers a list with Harbor's paging headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.authentication import CSRFCheck
from rest_framework.exceptions import NotAuthenticated, NotFound, ParseError, PermissionDenied
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import Actor
from projects.models import Project
from rbac.credentials import client_address, principal_from_request
from rbac.policy import Principal, authorize
from rbac.roles import Act, Res

PAGE_SIZE_DEFAULT = 10
PAGE_SIZE_MAX = 100


def api_principal(request: Request, *, anonymous: bool = False) -> Principal:
    """The caller: Basic, bearer, or the console session (which must carry CSRF on writes).

    Bad credentials raise LoginFailed, LoginThrottled or CredentialsInvalid; no
    credentials raise NotAuthenticated unless ``anonymous``.
    """
    django_request: HttpRequest = request._request
    principal = principal_from_request(django_request, sessions=True)
    if principal.is_anonymous and not anonymous:
        raise NotAuthenticated("authentication required: Basic credentials, a token or a session")
    if not principal.is_anonymous and not django_request.META.get("HTTP_AUTHORIZATION"):
        # From the session cookie, which a browser sends on any site's behalf.
        check = CSRFCheck(lambda _: None)  # type: ignore[arg-type,return-value]
        check.process_request(django_request)
        reason = check.process_view(django_request, None, (), {})  # type: ignore[arg-type]
        if reason:
            raise PermissionDenied(f"CSRF failed: {reason}")
    return principal


class ApiView(APIView):
    """Base of every REST view: our own authentication, one error handler, JSON."""

    authentication_classes: list[type] = []  # api_principal: throttled, audited logins
    permission_classes: list[type] = []  # each handler calls self.require
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    # Reads open to anonymous callers (public projects); writes always need a login.
    anonymous_reads = False

    def perform_authentication(self, request: Request) -> None:
        """Nothing here: DRF would replace the Django request's user and hide the session."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        reading = request.method in ("GET", "HEAD", "OPTIONS")
        self.principal = api_principal(request, anonymous=self.anonymous_reads and reading)

    def get_authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{settings.HARBORPY_TOKEN_SERVICE}"'

    @property
    def actor(self) -> Actor:
        return Actor(self.principal.subject or "anonymous", client_address(self.request))

    def require(self, permission: tuple[str, str], project: Project | None = None) -> None:
        """PermissionDenied (403) unless the caller may; NotAuthenticated (401) when anonymous."""
        decision = authorize(self.principal, permission, project)
        if decision.allowed:
            return
        if self.principal.is_anonymous:
            raise NotAuthenticated("authentication required")
        raise PermissionDenied(decision.reason or "permission denied")

    def may(self, permission: tuple[str, str], project: Project | None = None) -> bool:
        """Whether the caller may (for what a response shows, not for refusing)."""
        return authorize(self.principal, permission, project).allowed

    def visible_project(self, name_or_id: str) -> Project:
        """The project named (or numbered) in the URL, if the caller may see it.

        A project the caller may not read is answered 404, like a missing one, so
        names do not leak (a 401 for anonymous callers, who may log in).
        """
        lookup = Q(name=name_or_id)
        is_name = self.request.headers.get("X-Is-Resource-Name", "").lower() == "true"
        if name_or_id.isdigit() and not is_name:
            lookup |= Q(pk=int(name_or_id))
        project = Project.objects.filter(lookup).order_by("-name").first()
        if (
            project is not None
            and authorize(self.principal, (Res.PROJECT, Act.READ), project).allowed
        ):
            return project
        if self.principal.is_anonymous:
            raise NotAuthenticated("authentication required")
        raise NotFound(f"project {name_or_id!r} not found")


# --- pages ---------------------------------------------------------------------------------


def page_params(request: Request) -> tuple[int, int]:
    """``page`` (from 1) and ``page_size`` (1 to 100, default 10) from the query string."""
    try:
        page = int(request.query_params.get("page", 1))
        size = int(request.query_params.get("page_size", PAGE_SIZE_DEFAULT))
    except ValueError:
        raise ParseError("page and page_size are whole numbers") from None
    if page < 1 or size < 1:
        raise ParseError("page and page_size start at 1")
    return page, min(size, PAGE_SIZE_MAX)


def paginate(
    request: Request, items: QuerySet | Sequence[Any], render: Callable[[Any], Any]
) -> Response:
    """One page of ``items`` with ``X-Total-Count`` and a ``Link`` header (prev/next)."""
    page, size = page_params(request)
    total = items.count() if isinstance(items, QuerySet) else len(items)
    start = (page - 1) * size
    rows: Iterable[Any] = items[start : start + size]
    response = Response([render(row) for row in rows])
    response["X-Total-Count"] = str(total)
    links = []
    if page > 1:
        links.append(_page_link(request, page - 1, size, "prev"))
    if start + size < total:
        links.append(_page_link(request, page + 1, size, "next"))
    if links:
        response["Link"] = ", ".join(links)
    return response


def _page_link(request: Request, page: int, size: int, rel: str) -> str:
    params = {k: v for k, v in request.query_params.items() if k not in ("page", "page_size")}
    params.update(page=str(page), page_size=str(size))
    return f'<{request.path}?{urlencode(params)}>; rel="{rel}"'


# --- the q filter --------------------------------------------------------------------------

Q_TERM = re.compile(r"^(?P<key>[a-z_]+)=(?P<op>~?)(?P<value>.*)$")


RANGE = re.compile(r"^\[(?P<low>[^~\]]*)~(?P<high>[^~\]]*)\]$")


@dataclass(frozen=True)
class Term:
    key: str
    value: str
    fuzzy: bool

    @property
    def range(self) -> tuple[str, str] | None:
        """``[low~high]`` (either end may be empty) as ``(low, high)``; None if not a range."""
        match = RANGE.match(self.value)
        return (match["low"].strip(), match["high"].strip()) if match else None


def q_terms(request: Request, allowed: Iterable[str]) -> list[Term]:
    """``q=name=~dev,public=true``: exact (``k=v``) and fuzzy (``k=~v``) terms, comma-joined.

    A value ``[low~high]`` is a range (``op_time=[2026-01-01 00:00:00~2026-02-01 00:00:00]``),
    open on a side left empty; q_filter applies it to the fields named in ``ranges``.

    Plain query parameters with an allowed key (``?name=dev``) count as exact terms.
    Unknown keys are a 400, so a typo does not silently return everything.
    """
    keys = set(allowed)
    terms = []
    raw = request.query_params.get("q", "")
    for part in filter(None, (p.strip() for p in raw.split(","))):
        match = Q_TERM.match(part)
        if match is None:
            raise ParseError(f"bad q term {part!r}: use key=value or key=~value")
        terms.append(Term(match["key"], match["value"], bool(match["op"])))
    for key in keys & set(request.query_params):
        terms.append(Term(key, request.query_params[key], False))
    unknown = sorted({t.key for t in terms} - keys)
    if unknown:
        raise ParseError(f"unknown filter {unknown}; filters here: {sorted(keys)}")
    return terms


def q_filter(
    queryset: QuerySet, terms: list[Term], fields: dict[str, str], *, times: Iterable[str] = ()
) -> QuerySet:
    """Apply terms to a queryset; ``fields`` maps filter keys to model fields.

    Keys in ``times`` are date-times: ranges of them filter inclusively, each end
    ``YYYY-MM-DD[ HH:MM:SS]`` in UTC (or with an offset).
    """
    for term in terms:
        field = fields[term.key]
        bounds = term.range if term.key in times else None
        if term.key in times and bounds is None:
            raise ParseError(f"{term.key} takes a range: [low~high], either end may be empty")
        if bounds is not None:
            low, high = (_moment(term.key, end) if end else None for end in bounds)
            if low is not None:
                queryset = queryset.filter(**{f"{field}__gte": low})
            if high is not None:
                queryset = queryset.filter(**{f"{field}__lte": high})
        elif term.fuzzy:
            queryset = queryset.filter(**{f"{field}__icontains": term.value})
        elif field.endswith("public"):
            queryset = queryset.filter(**{field: term.value.lower() in ("true", "1")})
        else:
            queryset = queryset.filter(**{field: term.value})
    return queryset


def _moment(key: str, text: str) -> datetime:
    try:
        moment = parse_datetime(text) or _midnight(parse_date(text))
    except ValueError:
        moment = None
    if moment is None:
        raise ParseError(f"{key}: {text!r} is not a date-time like 2026-01-31 23:59:59")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _midnight(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day) if day else None
