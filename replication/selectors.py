"""Replication selectors: endpoints, policies, executions and tasks as the console lists them.

Each list is one query however many rows it has: counts and the last execution's status
come as annotations, not as a query per row.
"""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from distribution.models import Label
from projects.models import Project

from .models import Execution, RegistryEndpoint, ReplicationPolicy, Status, Task


def endpoint_list() -> QuerySet[RegistryEndpoint]:
    """Every endpoint by name, with ``policy_count`` (how many policies use it) and
    ``cache_count`` (how many proxy-cache projects pull from it)."""
    caches = (
        Project.objects.filter(registry_id=OuterRef("pk"))
        .order_by()
        .values("registry_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return RegistryEndpoint.objects.annotate(
        policy_count=Count("policies"), cache_count=Coalesce(Subquery(caches), 0)
    ).order_by("name")


def endpoint_get(*, endpoint_id: int) -> RegistryEndpoint | None:
    return RegistryEndpoint.objects.filter(pk=endpoint_id).first()


def policy_list() -> QuerySet[ReplicationPolicy]:
    """Every policy by name with its endpoint, and ``last_status`` / ``last_execution_id``:
    its newest execution's, or None when it never ran."""
    newest = Execution.objects.filter(policy=OuterRef("pk")).order_by("-pk")
    return (
        ReplicationPolicy.objects.select_related("endpoint")
        .annotate(
            last_status=Subquery(newest.values("status")[:1]),
            last_execution_id=Subquery(newest.values("pk")[:1]),
        )
        .order_by("name")
    )


def policy_get(*, policy_id: int) -> ReplicationPolicy | None:
    return ReplicationPolicy.objects.select_related("endpoint").filter(pk=policy_id).first()


def execution_list(*, policy: ReplicationPolicy | None = None) -> QuerySet[Execution]:
    """Executions newest first, with their policy, and live counts from their tasks.

    An execution's own counters are written when it finishes; while it runs, the tasks
    are the truth: ``done_count``, ``succeeded_count``, ``failed_count``,
    ``skipped_count``, ``task_count`` and ``bytes_moved`` come from them (one query).
    """
    executions = Execution.objects.select_related("policy").annotate(
        task_count=Count("tasks"),
        succeeded_count=Count("tasks", filter=Q(tasks__status=Status.SUCCEEDED)),
        failed_count=Count("tasks", filter=Q(tasks__status=Status.FAILED)),
        skipped_count=Count("tasks", filter=Q(tasks__status=Status.SKIPPED)),
        bytes_moved=Coalesce(Sum("tasks__bytes"), 0),
    )
    if policy is not None:
        executions = executions.filter(policy=policy)
    return executions.order_by("-pk")


def execution_get(*, execution_id: int) -> Execution | None:
    """One execution (with live task counts, as execution_list gives them)."""
    return execution_list().filter(pk=execution_id).select_related("policy__endpoint").first()


def task_list(*, execution: Execution) -> QuerySet[Task]:
    return execution.tasks.order_by("pk")


def label_names() -> list[str]:
    """The names a policy's label filter may use: every label's, global or of a project."""
    return sorted(set(Label.objects.values_list("name", flat=True)))
