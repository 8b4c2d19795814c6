"""Executions a person starts or stops (the API, the console's buttons): the service call
and its audit entry, in one transaction.  Scheduled and event-based runs call execution_start
directly; nobody asked for them."""

from __future__ import annotations

from django.db import transaction

from audit.services import Actor, audit_record

from .models import Execution, ReplicationPolicy
from .services import execution_cancel, execution_start


def execution_request(*, policy: ReplicationPolicy, actor: Actor) -> Execution:
    """Replicate now: a manual execution handed to a worker, recorded as ``replicate``.

    PolicyDisabled (nothing recorded) when the policy is disabled.
    """
    with transaction.atomic():
        execution = execution_start(policy=policy, trigger="manual")
        audit_record(
            actor=actor,
            action="replicate",
            resource=f"replication-policy:{policy.name}",
            detail={"execution": execution.pk},
        )
    return execution


def execution_stop(*, execution: Execution, actor: Actor) -> bool:
    """Stop a pending or running execution, recorded as ``stop``; False (and nothing
    recorded) when it had ended already."""
    with transaction.atomic():
        stopped = execution_cancel(execution=execution)
        if stopped:
            audit_record(
                actor=actor,
                action="stop",
                resource=f"replication-policy:{execution.policy.name}",
                detail={"execution": execution.pk},
            )
    return stopped
