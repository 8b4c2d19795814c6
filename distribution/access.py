"""What each /v2/ request asks of the access policy, and who is asking.

One table maps a route and HTTP method to the action it needs on the
repository; ``enforce`` works out the principal (Basic, bearer token or
anonymous) and asks ``rbac.authorize_scope`` for each resource a request
touches.  Every /v2/ view calls it once, before doing any work.

A request without credentials, or whose token lacks the access, gets 401 with
the token spec's challenge (realm, service, scope) so the client can fetch a
token; a principal logged in with Basic gets 403.  A private project and a
missing one are refused alike, so names do not leak.
"""

from __future__ import annotations

from django.conf import settings

from rbac.credentials import principal_from_request
from rbac.exceptions import CredentialsInvalid, LoginFailed, LoginThrottled
from rbac.policy import Action, Principal, Resource, authorize_scope

from .exceptions import Denied, TooManyRequests, Unauthorized

ROUTE_ACTIONS: dict[tuple[str, str], Action] = {
    ("blob", "GET"): Action.PULL,
    ("blob", "HEAD"): Action.PULL,
    ("blob", "DELETE"): Action.DELETE,
    ("upload", "POST"): Action.PUSH,
    ("upload", "GET"): Action.PUSH,
    ("upload", "PATCH"): Action.PUSH,
    ("upload", "PUT"): Action.PUSH,
    ("upload", "DELETE"): Action.PUSH,
    ("manifest", "GET"): Action.PULL,
    ("manifest", "HEAD"): Action.PULL,
    ("manifest", "PUT"): Action.PUSH,
    ("manifest", "DELETE"): Action.DELETE,
    ("tags", "GET"): Action.PULL,
    ("referrers", "GET"): Action.PULL,
    ("catalog", "GET"): Action.LIST,
}


def required_access(request, route: str, name: str | None) -> list[tuple[Resource, Action]]:
    """The (resource, action) pairs a request needs.

    HEAD needs what GET needs.  A method with no entry needs nothing here only
    because the view answers it with 405 before doing any work.
    """
    method = "GET" if request.method == "HEAD" else request.method
    action = ROUTE_ACTIONS.get((route, method))
    if action is None:
        return []
    if route == "catalog":
        return [(Resource("registry", "catalog"), action)]
    if name is None:
        return []
    return [(Resource("repository", name), action)]


def may_mount_from(request, source: str) -> bool:
    """Whether a cross-repository mount may read ``source``: it needs pull there.

    Without it the mount is not tried and the POST starts an ordinary upload
    (202), as the spec allows, so the answer does not tell whether the blob
    or the repository exists.
    """
    return authorize_scope(request.principal, Resource("repository", source), Action.PULL).allowed


def enforce(request, route: str, name: str | None) -> Principal:
    """The principal behind ``request``, once it may do all the request needs.

    Raises Unauthorized (401 with a challenge), Denied (403) or TooManyRequests.
    """
    principal = request_principal(request)
    if route == "base":
        if principal.is_anonymous and principal.token_access is None:
            raise Unauthorized("authentication required", challenge=challenge(request))
        return principal
    needs = required_access(request, route, name)
    if all(authorize_scope(principal, resource, action).allowed for resource, action in needs):
        return principal
    if settings.HARBORPY_READ_ONLY and any(action != Action.PULL for _, action in needs):
        raise Denied("the registry is in read-only mode")
    if principal.token_access is not None or principal.is_anonymous:
        error = "insufficient_scope" if principal.token_access is not None else ""
        raise Unauthorized(
            "authentication required" if not error else "the token does not grant this access",
            challenge=challenge(request, needs, error=error),
        )
    raise Denied("requested access to the resource is denied")


def request_principal(request) -> Principal:
    """The principal, with bad or throttled credentials turned into /v2/ errors."""
    try:
        return principal_from_request(request)
    except LoginThrottled as error:
        raise TooManyRequests(str(error), retry_after=error.retry_after) from None
    except (LoginFailed, CredentialsInvalid) as error:
        raise Unauthorized(str(error), challenge=challenge(request)) from None


def challenge(
    request, needs: list[tuple[Resource, Action]] | None = None, *, error: str = ""
) -> str:
    """``Bearer realm="…/service/token",service="…"[,scope="…"][,error="…"]``."""
    base = settings.HARBORPY_EXTERNAL_URL or request.build_absolute_uri("/").rstrip("/")
    parts = [f'realm="{base}/service/token"', f'service="{settings.HARBORPY_TOKEN_SERVICE}"']
    scopes: dict[Resource, list[str]] = {}
    for resource, action in needs or ():
        actions = scopes.setdefault(resource, [])
        if action == Action.PUSH and Action.PULL not in actions:
            actions.append(Action.PULL)  # clients ask for pull,push when they push
        if action not in actions:
            actions.append(action)
    if scopes:
        text = " ".join(f"{r.type}:{r.name}:{','.join(a)}" for r, a in scopes.items())
        parts.append(f'scope="{text}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)
