"""Replication forms (system admins): registry endpoints and policies, created and edited
through replication.policies, which checks every value and records the change; "Test
connection" for a saved endpoint or for the values being typed.

A refused form comes back with what was typed (never a password) and the service's message
beside its field, with status 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render

from replication.client import ReplicationError
from replication.exceptions import (
    EndpointExists,
    EndpointInvalid,
    PolicyExists,
    PolicyInvalid,
    ReplicationInvalid,
)
from replication.models import Direction, RegistryEndpoint, ReplicationPolicy, Trigger
from replication.policies import (
    endpoint_apply,
    endpoint_create,
    endpoint_update,
    policy_create,
    policy_update,
)
from replication.selectors import endpoint_get, endpoint_list, label_names, policy_get
from replication.services import endpoint_test

from ..access import actor_of, console_page, system_access
from ..forms import flag

# The services' messages start with the field they are about ("url: ..."); the form shows
# each beside that field.  Others go above the form.
FIELDS = {
    "name": "name",
    "url": "url",
    "direction": "direction",
    "filters": "filters",
    "dest_namespace": "destination_namespace",
    "trigger": "trigger",
    "deletion": "replicate_deletion",
}


@dataclass
class Form:
    """What a form shows: the values (typed, or stored) and the errors by field."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    def refuse(self, error: Exception) -> None:
        text = str(error)
        prefix, _, rest = text.partition(": ")
        if prefix in FIELDS and rest:
            self.errors[FIELDS[prefix]] = rest
        else:
            self.errors["form"] = text


# --- registry endpoints --------------------------------------------------------------------


def _endpoint_values(data: QueryDict) -> dict[str, Any]:
    return {
        "name": data.get("name", ""),
        "url": data.get("url", ""),
        "username": data.get("username", ""),
        "verify_tls": flag(data, "verify_tls"),
    }


@console_page("GET", "POST")
def registry_new_page(request: HttpRequest) -> HttpResponse:
    """The form for a new registry endpoint; POST records it."""
    can = system_access(request, "create_replication")
    form = Form({"name": "", "url": "", "username": "", "verify_tls": True})
    if request.method == "POST":
        form = Form(_endpoint_values(request.POST))
        try:
            endpoint = endpoint_create(
                **form.values, password=request.POST.get("password", ""), actor=actor_of(request)
            )
        except (EndpointInvalid, EndpointExists) as error:
            form.refuse(error)
        else:
            messages.success(request, f"Registry endpoint {endpoint.name} was created.")
            return redirect("console:replication_registries")
    return _registry_form(request, can, form, endpoint=None)


@console_page("GET", "POST")
def registry_edit_page(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """Edit an endpoint; an empty password keeps the stored one (which is never shown)."""
    can = system_access(request, "change_replication")
    endpoint = endpoint_or_404(endpoint_id)
    form = Form(
        {
            "name": endpoint.name,
            "url": endpoint.url,
            "username": endpoint.username,
            "verify_tls": endpoint.verify_tls,
        }
    )
    if request.method == "POST":
        form = Form(_endpoint_values(request.POST))
        try:
            endpoint = endpoint_update(
                endpoint=endpoint,
                **form.values,
                password=request.POST.get("password") or None,
                actor=actor_of(request),
            )
        except (EndpointInvalid, EndpointExists) as error:
            form.refuse(error)
            endpoint.refresh_from_db()  # the refused values stay off the page's header
        else:
            messages.success(request, f"Registry endpoint {endpoint.name} was saved.")
            return redirect("console:replication_registries")
    return _registry_form(request, can, form, endpoint=endpoint)


def _registry_form(
    request: HttpRequest, can: dict[str, bool], form: Form, *, endpoint: RegistryEndpoint | None
) -> HttpResponse:
    context = {"can": can, "area": "registries", "form": form, "endpoint": endpoint}
    status = 400 if form.errors else 200
    return render(request, "console/replication_registry_form.html", context, status=status)


@console_page("POST")
def registry_test_page(request: HttpRequest) -> HttpResponse:
    """Test a connection: a saved endpoint (``endpoint``), or the form's unsaved values over
    it (an empty password keeps the stored one) or over nothing.

    Answers JSON ``{"ok", "message"}`` to the page's script (400 for a value that cannot
    be used); without the script, back to the list with the result as a message.
    """
    system_access(request, "see_replication")
    endpoint_id = request.POST.get("endpoint", "")
    endpoint = endpoint_or_404(int(endpoint_id)) if endpoint_id.isdigit() else RegistryEndpoint()
    status = 200
    try:
        if "url" in request.POST:
            endpoint_apply(
                endpoint=endpoint,
                url=request.POST.get("url", ""),
                username=request.POST.get("username", ""),
                password=request.POST.get("password") or None,
                verify_tls=flag(request.POST, "verify_tls"),
            )
        elif endpoint.pk is None:
            raise EndpointInvalid("give the endpoint or its URL")
        endpoint_test(endpoint=endpoint)
    except ReplicationInvalid as error:
        ok, message, status = False, str(error), 400
    except ReplicationError as error:
        ok, message = False, f"{endpoint.url} failed: {error}"
    else:
        ok, message = True, f"{endpoint.url} answered and accepted the credentials."
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"ok": ok, "message": message}, status=status)
    (messages.success if ok else messages.error)(request, f"Test connection: {message}")
    return redirect("console:replication_registries")


def endpoint_or_404(endpoint_id: int) -> RegistryEndpoint:
    endpoint = endpoint_get(endpoint_id=endpoint_id)
    if endpoint is None:
        raise Http404("no such registry endpoint")
    return endpoint


# --- policies ------------------------------------------------------------------------------


def _policy_values(data: QueryDict) -> dict[str, Any]:
    # The cron field is hidden unless the trigger is scheduled: what it holds then is stale.
    scheduled = data.get("trigger", "") == Trigger.SCHEDULED
    return {
        "name": data.get("name", ""),
        "direction": data.get("direction", ""),
        "repository_filter": data.get("repository_filter", ""),
        "tag_filter": data.get("tag_filter", ""),
        "label_filter": [name for name in data.getlist("label_filter") if name],
        "destination_namespace": data.get("destination_namespace", ""),
        "trigger": data.get("trigger", ""),
        "schedule": data.get("schedule", "") if scheduled else "",
        "override": flag(data, "override"),
        "enabled": flag(data, "enabled"),
        "replicate_deletion": flag(data, "replicate_deletion"),
    }


def _chosen_endpoint(data: QueryDict, form: Form) -> RegistryEndpoint | None:
    chosen = data.get("endpoint", "")
    endpoint = endpoint_get(endpoint_id=int(chosen)) if chosen.isdigit() else None
    if endpoint is None:
        form.errors["endpoint"] = "choose a registry endpoint"
    return endpoint


@console_page("GET", "POST")
def policy_new_page(request: HttpRequest) -> HttpResponse:
    """The form for a new replication policy; POST records it."""
    can = system_access(request, "create_replication")
    form = Form(
        {
            "direction": Direction.PUSH,
            "repository_filter": "**",
            "tag_filter": "*",
            "label_filter": [],
            "trigger": Trigger.MANUAL,
            "override": True,
            "enabled": True,
        }
    )
    if request.method == "POST":
        form, endpoint, values = _posted_policy(request)
        if endpoint is not None:
            try:
                policy = policy_create(endpoint=endpoint, **values, actor=actor_of(request))
            except (PolicyInvalid, PolicyExists) as error:
                form.refuse(error)
            else:
                messages.success(request, f"Replication policy {policy.name} was created.")
                return redirect("console:replication_policy", policy_id=policy.pk)
    return _policy_form(request, can, form, policy=None)


def _posted_policy(request: HttpRequest) -> tuple[Form, RegistryEndpoint | None, dict]:
    """The policy form as posted, the endpoint it names (None: refused on the form), and
    the values for the services."""
    form = Form(_policy_values(request.POST))
    form.values["endpoint"] = request.POST.get("endpoint", "")
    endpoint = _chosen_endpoint(request.POST, form)
    values = {k: v for k, v in form.values.items() if k != "endpoint"}
    return form, endpoint, values


@console_page("GET", "POST")
def policy_edit_page(request: HttpRequest, policy_id: int) -> HttpResponse:
    can = system_access(request, "change_replication")
    policy = policy_get(policy_id=policy_id)
    if policy is None:
        raise Http404("no such replication policy")
    stored = {key: getattr(policy, key) for key in _policy_values(QueryDict())}
    form = Form({**stored, "endpoint": str(policy.endpoint_id)})
    if request.method == "POST":
        form, endpoint, values = _posted_policy(request)
        if endpoint is not None:
            try:
                policy_update(policy=policy, endpoint=endpoint, **values, actor=actor_of(request))
            except (PolicyInvalid, PolicyExists) as error:
                form.refuse(error)
                policy.refresh_from_db()  # the refused values stay off the page's header
            else:
                messages.success(request, f"Replication policy {policy.name} was saved.")
                return redirect("console:replication_policy", policy_id=policy.pk)
    return _policy_form(request, can, form, policy=policy)


def _policy_form(
    request: HttpRequest,
    can: dict[str, bool],
    form: Form,
    *,
    policy: ReplicationPolicy | None,
) -> HttpResponse:
    context = {
        "can": can,
        "area": "replications",
        "form": form,
        "policy": policy,
        "endpoints": endpoint_list(),
        "labels": sorted(set(label_names()) | set(form.values.get("label_filter") or [])),
        "directions": Direction.choices,
        "triggers": [
            (Trigger.MANUAL, "Manual: only when started"),
            (Trigger.SCHEDULED, "Scheduled: on a cron schedule"),
            (Trigger.EVENT_BASED, "Event-based: on each push (push policies)"),
        ],
    }
    status = 400 if form.errors else 200
    return render(request, "console/replication_policy_form.html", context, status=status)
