"""Domain errors of replication's writes; the REST API maps each to a status in api/errors.py."""

from __future__ import annotations

from .client import ReplicationError


class ReplicationInvalid(ReplicationError):
    """A value given for an endpoint or a policy is not acceptable (400)."""


class EndpointInvalid(ReplicationInvalid):
    """A registry endpoint's name, URL or credentials are not acceptable."""


class PolicyInvalid(ReplicationInvalid):
    """A policy's name, filters, trigger, schedule or options are not acceptable."""


class EndpointExists(ReplicationError):
    """Another registry endpoint has this name (409)."""


class PolicyExists(ReplicationError):
    """Another replication policy has this name (409)."""


class EndpointInUse(ReplicationError):
    """A policy still uses the endpoint being deleted (412)."""
