"""Replication services: test an endpoint; start, run and stop executions; triggers.

A run lists the source's repositories and tags that match the policy's filters,
records one Task per tag, and copies each: blobs first (skipped when the
destination has them, mounted when it has them in another repository we know
of), an index's children by digest, then the tagged manifest, byte for byte.
Executions also start on a schedule and on registry events (triggers), and
delete at the destination what was deleted here (deletion replication).  The
writes of endpoints and policies are in replication.policies.
"""

from .copier import BACKOFF, HEARTBEAT_SECONDS, RETRIES, TASK_TIMEOUT, Copier, Heartbeat, retrying
from .executions import (
    PolicyDisabled,
    _matches,
    destination_name,
    execution_cancel,
    execution_create,
    execution_run,
    execution_start,
    labelled_tags,
)
from .sides import (
    Destination,
    LocalDestination,
    LocalSource,
    RemoteDestination,
    RemoteSource,
    Source,
    client_for,
    endpoint_test,
)
from .triggers import (
    executions_fail_stalled,
    executions_recover,
    on_artifact_pushed,
    on_artifacts_deleted,
    on_referrer_pushed,
    replication_deleted,
    replication_pushed,
    replication_referrer_pushed,
    replication_scheduled,
)

_retrying = retrying  # the name tests and older callers use

__all__ = [
    "BACKOFF",
    "HEARTBEAT_SECONDS",
    "RETRIES",
    "TASK_TIMEOUT",
    "Copier",
    "Destination",
    "Heartbeat",
    "LocalDestination",
    "LocalSource",
    "PolicyDisabled",
    "RemoteDestination",
    "RemoteSource",
    "Source",
    "_matches",
    "_retrying",
    "client_for",
    "destination_name",
    "endpoint_test",
    "execution_cancel",
    "execution_create",
    "execution_run",
    "execution_start",
    "executions_fail_stalled",
    "executions_recover",
    "labelled_tags",
    "on_artifact_pushed",
    "on_artifacts_deleted",
    "on_referrer_pushed",
    "replication_deleted",
    "replication_pushed",
    "replication_referrer_pushed",
    "replication_scheduled",
    "retrying",
]
