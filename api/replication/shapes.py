"""Replication's request and response shapes, Harbor v2's, and the functions that fill them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from replication.models import Direction, Execution, RegistryEndpoint, ReplicationPolicy, Task


class CredentialSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["basic"], default="basic")
    access_key = serializers.CharField(required=False, allow_blank=True, help_text="The username.")
    access_secret = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4096,
        write_only=True,
        help_text="The password: write-only, never returned.",
    )


class RegistrySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=128)
    url = serializers.URLField(max_length=512, help_text="http(s)://host[:port]")
    credential = CredentialSerializer(required=False)
    insecure = serializers.BooleanField(default=False, help_text="Skip TLS verification.")
    creation_time = serializers.DateTimeField(read_only=True)


class PingSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="A saved endpoint; or give a body.")
    url = serializers.URLField(required=False, max_length=512)
    credential = CredentialSerializer(required=False)
    insecure = serializers.BooleanField(default=False)


class RegistryRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(read_only=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "name, tag: a doublestar glob"},
            {"type": "array", "items": {"type": "string"}, "description": "label: names"},
        ]
    }
)
class FilterValueField(serializers.JSONField):
    """A glob (name and tag filters) or a list of label names (the label filter)."""


class FilterSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["name", "tag", "label"])
    value = FilterValueField(
        help_text="name, tag: a doublestar glob; label: the names an artifact must all carry."
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        value = data["value"]
        if data["type"] == "label":
            if isinstance(value, str):
                value = [value] if value else []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValidationError({"value": "a label filter's value is a list of names"})
        elif not isinstance(value, str):
            raise ValidationError({"value": f"a {data['type']} filter's value is a glob"})
        return {"type": data["type"], "value": value}


class TriggerSettingsSerializer(serializers.Serializer):
    cron = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='For scheduled triggers: "minute hour day month weekday" (or Harbor\'s six '
        "fields, seconds 0), or @hourly, @daily...",
    )


class TriggerSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["manual", "scheduled", "event_based"])
    trigger_settings = TriggerSettingsSerializer(required=False)


class PolicySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=128)
    src_registry = RegistryRefSerializer(
        required=False, allow_null=True, help_text="Set for pull: the remote source."
    )
    dest_registry = RegistryRefSerializer(
        required=False, allow_null=True, help_text="Set for push: the remote destination."
    )
    filters = FilterSerializer(many=True, required=False)
    dest_namespace = serializers.CharField(required=False, allow_blank=True, max_length=255)
    trigger = TriggerSerializer(
        required=False,
        help_text="manual (the default), scheduled (a cron), or event_based (push policies: "
        "on every push, and on deletes when deletion is on).",
    )
    deletion = serializers.BooleanField(
        default=False, help_text="Push policies: delete at the destination what is deleted here."
    )
    override = serializers.BooleanField(default=True)
    enabled = serializers.BooleanField(default=True)
    creation_time = serializers.DateTimeField(read_only=True)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        given = bool(data.get("src_registry")) + bool(data.get("dest_registry"))
        if given > 1 or (given == 0 and not self.partial):
            raise ValidationError(
                "give exactly one of src_registry (pull) and dest_registry (push)"
            )
        kinds = [f["type"] for f in data.get("filters") or []]
        if len(kinds) != len(set(kinds)):
            raise ValidationError("at most one filter of each type")
        return data


class ExecutionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    policy_id = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, running, succeeded, failed, cancelled")
    trigger = serializers.CharField(help_text="manual, scheduled or event_based")
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField()
    succeed = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    bytes = serializers.IntegerField()
    status_text = serializers.CharField(help_text="What stopped the whole run, if anything.")


class ExecutionStartSerializer(serializers.Serializer):
    policy_id = serializers.IntegerField()


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    execution_id = serializers.IntegerField()
    resource_type = serializers.CharField(help_text="image")
    operation = serializers.CharField(help_text="copy, or delete (deletion replication)")
    src_resource = serializers.CharField()
    dst_resource = serializers.CharField()
    digest = serializers.CharField()
    status = serializers.CharField()
    bytes = serializers.IntegerField(help_text="Blob bytes actually transferred.")
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


def _time(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


def registry_out(endpoint: RegistryEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "name": endpoint.name,
        "url": endpoint.url,
        "credential": {"type": "basic", "access_key": endpoint.username},
        "insecure": not endpoint.verify_tls,
        "creation_time": endpoint.created_at.isoformat(),
    }


def policy_out(policy: ReplicationPolicy) -> dict[str, Any]:
    remote = {"id": policy.endpoint_id, "name": policy.endpoint.name}
    push = policy.direction == Direction.PUSH
    filters: list[dict[str, Any]] = [
        {"type": "name", "value": policy.repository_filter},
        {"type": "tag", "value": policy.tag_filter},
    ]
    if policy.label_filter:
        filters.append({"type": "label", "value": list(policy.label_filter)})
    return {
        "id": policy.pk,
        "name": policy.name,
        "src_registry": None if push else remote,
        "dest_registry": remote if push else None,
        "filters": filters,
        "dest_namespace": policy.destination_namespace,
        "trigger": {"type": policy.trigger, "trigger_settings": {"cron": policy.schedule}},
        "deletion": policy.replicate_deletion,
        "override": policy.override,
        "enabled": policy.enabled,
        "creation_time": policy.created_at.isoformat(),
    }


def execution_out(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.pk,
        "policy_id": execution.policy_id,
        "status": execution.status,
        "trigger": execution.trigger,
        "start_time": _time(execution.started_at or execution.created_at),
        "end_time": _time(execution.finished_at),
        "total": execution.total,
        "succeed": execution.succeeded,
        "failed": execution.failed,
        "skipped": execution.skipped,
        "bytes": execution.bytes,
        "status_text": execution.error,
    }


def task_out(task: Task) -> dict[str, Any]:
    return {
        "id": task.pk,
        "execution_id": task.execution_id,
        "resource_type": "image",
        "operation": task.operation,
        "src_resource": task.source,
        "dst_resource": task.destination,
        "digest": task.digest,
        "status": task.status,
        "bytes": task.bytes,
        "start_time": _time(task.started_at),
        "end_time": _time(task.finished_at),
        "error": task.error,
    }
