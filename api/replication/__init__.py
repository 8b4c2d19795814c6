"""Replication in Harbor v2's shapes: /api/v2.0/registries, /replication/policies, /executions.

System admins only.  An endpoint's password (``credential.access_secret``) is
write-only: it is never returned.  A policy pushes when ``dest_registry`` is
set and pulls when ``src_registry`` is; its ``trigger`` is manual, scheduled
(``trigger_settings.cron``) or event_based, its ``filters`` name, tag and
label, and ``deletion`` replicates deletes (push).  ``POST
/replication/executions`` starts a run on a worker; ``PUT
/replication/executions/{id}`` stops it.  The views validate nothing
themselves: replication.policies does.  How a run goes is in docs/replication.md.
"""

from .executions import ExecutionListView, ExecutionView, TaskListView
from .policies import PolicyListView, PolicyView
from .registries import RegistryListView, RegistryPingView, RegistryView
from .shapes import execution_out, policy_out, registry_out, task_out

__all__ = [
    "ExecutionListView",
    "ExecutionView",
    "PolicyListView",
    "PolicyView",
    "RegistryListView",
    "RegistryPingView",
    "RegistryView",
    "TaskListView",
    "execution_out",
    "policy_out",
    "registry_out",
    "task_out",
]
