"""Replication (system admins): registry endpoints, policies, their executions and tasks."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from replication.models import Execution, ReplicationPolicy
from replication.selectors import (
    endpoint_list,
    execution_get,
    execution_list,
    policy_get,
    policy_list,
    task_list,
)

from ..access import console_page, system_access
from ..executions import ACTIVE, CHART_EXECUTIONS, bytes_chart, execution_row

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
        "chart": bytes_chart(executions[:CHART_EXECUTIONS]),
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

urlpatterns = [
    path(REGISTRIES, registries_page, name="replication_registries"),
    path(POLICIES, policies_page, name="replication_policies"),
    path(POLICIES + "<int:policy_id>/", policy_page, name="replication_policy"),
    path(EXECUTIONS, executions_page, name="replication_executions"),
    path(EXECUTIONS + "<int:execution_id>/", execution_page, name="replication_execution"),
]
