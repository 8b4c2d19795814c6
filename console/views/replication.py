"""Replication (system admins): registry endpoints, policies, their executions and tasks."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from replication.exceptions import EndpointInUse
from replication.models import Execution, ReplicationPolicy
from replication.operations import execution_request, execution_stop
from replication.policies import endpoint_delete, policy_delete, policy_update
from replication.selectors import (
    endpoint_list,
    execution_get,
    execution_list,
    policy_get,
    policy_list,
    task_list,
)
from replication.services import PolicyDisabled

from ..access import actor_of, console_page, system_access
from ..executions import ACTIVE, CHART_EXECUTIONS, execution_row, executions_chart
from ..forms import flag
from . import replication_forms as forms

EXECUTIONS_PAGE_SIZE = 20
TASKS_PAGE_SIZE = 50


@console_page("GET")
def registries_page(request: HttpRequest) -> HttpResponse:
    """The registry endpoints, with how many policies use each."""
    context = {
        "can": system_access(request, "see_replication"),
        "area": "registries",
        "endpoints": endpoint_list(),
    }
    return render(request, "console/replication_registries.html", context)


@console_page("GET")
def policies_page(request: HttpRequest) -> HttpResponse:
    """The replication policies with their last execution's status."""
    context = {
        "can": system_access(request, "see_replication"),
        "area": "replications",
        "policies": policy_list(),
    }
    return render(request, "console/replication_policies.html", context)


@console_page("GET")
def executions_page(request: HttpRequest) -> HttpResponse:
    """Every policy's executions, newest first, with the chart of bytes moved."""
    can = system_access(request, "see_replication")
    return _executions(request, can, policy=None)


@console_page("GET")
def policy_page(request: HttpRequest, policy_id: int) -> HttpResponse:
    """One policy: its settings and its executions."""
    can = system_access(request, "see_replication")
    return _executions(request, can, policy=_policy(policy_id))


def _executions(
    request: HttpRequest, can: dict[str, bool], *, policy: ReplicationPolicy | None
) -> HttpResponse:
    executions = execution_list(policy=policy)
    page = Paginator(executions, EXECUTIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [execution_row(execution) for execution in page]
    context = {
        "can": can,
        "area": "replications",
        "policy": policy,
        "page": page,
        "rows": rows,
        "keep": "",
        "active": any(row.active for row in rows),
        "chart": executions_chart(executions[:CHART_EXECUTIONS]),
    }
    return render(request, "console/replication_executions.html", context)


@console_page("GET")
def execution_page(request: HttpRequest, execution_id: int) -> HttpResponse:
    """One execution: its progress and its tasks (one per tag copied or deleted)."""
    can = system_access(request, "see_replication")
    execution = _execution(execution_id)
    row = execution_row(execution)
    page = Paginator(task_list(execution=execution), TASKS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "can": can,
        "area": "replications",
        "row": row,
        "execution": execution,
        "page": page,
        "keep": "",
        "active": execution.status in ACTIVE,
    }
    return render(request, "console/replication_execution.html", context)


@console_page("POST")
def registry_delete_page(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """Delete an endpoint; refused while a policy uses it."""
    system_access(request, "delete_replication")
    endpoint = forms.endpoint_or_404(endpoint_id)
    try:
        endpoint_delete(endpoint=endpoint, actor=actor_of(request))
    except EndpointInUse:
        users = ", ".join(endpoint.policies.order_by("name").values_list("name", flat=True))
        messages.error(
            request,
            f"Registry endpoint {endpoint.name} was not deleted: the replication policies "
            f"{users} use it. Delete them or give them another endpoint first.",
        )
    else:
        messages.success(request, f"Registry endpoint {endpoint.name} was deleted.")
    return redirect("console:replication_registries")


@console_page("POST")
def policy_enable_page(request: HttpRequest, policy_id: int) -> HttpResponse:
    """Enable or disable a policy (a disabled one neither runs nor is triggered)."""
    system_access(request, "change_replication")
    policy = _policy(policy_id)
    enabled = flag(request.POST, "enabled")
    policy_update(policy=policy, enabled=enabled, actor=actor_of(request))
    state = "enabled" if enabled else "disabled"
    messages.success(request, f"Replication policy {policy.name} is {state}.")
    return redirect(policy_url(policy) if request.POST.get("next") == "policy" else POLICY_LIST)


@console_page("POST")
def policy_delete_page(request: HttpRequest, policy_id: int) -> HttpResponse:
    """Delete a policy with its executions."""
    system_access(request, "delete_replication")
    policy = _policy(policy_id)
    policy_delete(policy=policy, actor=actor_of(request))
    messages.success(request, f"Replication policy {policy.name} was deleted.")
    return redirect("console:replication_policies")


@console_page("POST")
def policy_run_page(request: HttpRequest, policy_id: int) -> HttpResponse:
    """Replicate now: an execution handed to a worker; its page shows it progress."""
    system_access(request, "create_replication")
    policy = _policy(policy_id)
    try:
        execution = execution_request(policy=policy, actor=actor_of(request))
    except PolicyDisabled as error:
        messages.error(request, f"{error}: enable it first.")
        return redirect("console:replication_policies")
    messages.success(request, f"Execution {execution.pk} of {policy.name} was started.")
    return redirect("console:replication_execution", execution_id=execution.pk)


@console_page("POST")
def execution_stop_page(request: HttpRequest, execution_id: int) -> HttpResponse:
    """Stop a pending or running execution (the task being copied finishes first)."""
    system_access(request, "change_replication")
    execution = _execution(execution_id)
    if execution_stop(execution=execution, actor=actor_of(request)):
        messages.success(request, f"Execution {execution.pk} was stopped.")
    else:
        messages.error(request, f"Execution {execution.pk} had ended: nothing to stop.")
    return redirect("console:replication_execution", execution_id=execution.pk)


POLICY_LIST = "/administration/replications/"


def policy_url(policy: ReplicationPolicy) -> str:
    return f"{POLICY_LIST}{policy.pk}/"


def _policy(policy_id: int) -> ReplicationPolicy:
    policy = policy_get(policy_id=policy_id)
    if policy is None:
        raise Http404("no such replication policy")
    return policy


def _execution(execution_id: int) -> Execution:
    execution = execution_get(execution_id=execution_id)
    if execution is None:
        raise Http404("no such replication execution")
    return execution


REGISTRIES, POLICIES = "administration/registries/", "administration/replications/"
EXECUTIONS = POLICIES + "executions/"

ENDPOINT, POLICY = REGISTRIES + "<int:endpoint_id>/", POLICIES + "<int:policy_id>/"
EXECUTION = EXECUTIONS + "<int:execution_id>/"

urlpatterns = [
    path(REGISTRIES, registries_page, name="replication_registries"),
    path(REGISTRIES + "new/", forms.registry_new_page, name="registry_new"),
    path(REGISTRIES + "test/", forms.registry_test_page, name="registry_test"),
    path(ENDPOINT, forms.registry_edit_page, name="registry_edit"),
    path(ENDPOINT + "delete/", registry_delete_page, name="registry_delete"),
    path(POLICIES, policies_page, name="replication_policies"),
    path(POLICIES + "new/", forms.policy_new_page, name="policy_new"),
    path(POLICY, policy_page, name="replication_policy"),
    path(POLICY + "edit/", forms.policy_edit_page, name="policy_edit"),
    path(POLICY + "enable/", policy_enable_page, name="policy_enable"),
    path(POLICY + "delete/", policy_delete_page, name="policy_delete"),
    path(POLICY + "run/", policy_run_page, name="policy_run"),
    path(EXECUTIONS, executions_page, name="replication_executions"),
    path(EXECUTION, execution_page, name="replication_execution"),
    path(EXECUTION + "stop/", execution_stop_page, name="execution_stop"),
]
