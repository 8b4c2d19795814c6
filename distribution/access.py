"""What each /v2/ request asks of the access policy.

One table maps a route and HTTP method to the action it needs on the
repository; ``enforce`` asks ``rbac.authorize`` for each resource a request
touches.  Every /v2/ view calls it once, before doing any work.
"""

from __future__ import annotations

from rbac.policy import Action, Resource, authorize, principal_from_request

from .exceptions import Denied

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
    needs = [(Resource("repository", name), action)]
    source = request.GET.get("from")
    if route == "upload" and request.method == "POST" and source:
        needs.append((Resource("repository", source), Action.PULL))  # a mount reads the source
    return needs


def enforce(request, route: str, name: str | None) -> None:
    """Raise Denied unless the principal behind ``request`` may do all the request needs."""
    principal = principal_from_request(request)
    for resource, action in required_access(request, route, name):
        decision = authorize(principal, action, resource)
        if not decision.allowed:
            raise Denied(decision.reason or "requested access to the resource is denied")
