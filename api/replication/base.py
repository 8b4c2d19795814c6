"""The base of replication's views: resolve a registry, policy or execution, once."""

from __future__ import annotations

from rest_framework.exceptions import NotFound

from rbac.policy import System
from rbac.roles import Act
from replication.models import Execution, RegistryEndpoint, ReplicationPolicy

from ..base import ApiView


class ReplicationView(ApiView):
    def endpoint(self, registry_id: int) -> RegistryEndpoint:
        self.require((System.REPLICATION, Act.READ))
        endpoint = RegistryEndpoint.objects.filter(pk=registry_id).first()
        if endpoint is None:
            raise NotFound(f"registry {registry_id} not found")
        return endpoint

    def policy(self, policy_id: int) -> ReplicationPolicy:
        self.require((System.REPLICATION, Act.READ))
        policy = ReplicationPolicy.objects.select_related("endpoint").filter(pk=policy_id).first()
        if policy is None:
            raise NotFound(f"replication policy {policy_id} not found")
        return policy

    def execution(self, execution_id: int) -> Execution:
        self.require((System.REPLICATION, Act.READ))
        execution = Execution.objects.filter(pk=execution_id).first()
        if execution is None:
            raise NotFound(f"replication execution {execution_id} not found")
        return execution
