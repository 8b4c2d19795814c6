"""Writes of replication's configuration: registry endpoints and policies, each audited.

The services take plain values, check every one of them and raise domain
errors (replication.exceptions): EndpointInvalid / PolicyInvalid for a bad
value (400), EndpointExists / PolicyExists for a taken name (409),
EndpointInUse when a policy still uses an endpoint being deleted (412).
Arguments of the update services left at None keep their current value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from audit.services import Actor, audit_record
from distribution.exceptions import NameInvalid
from distribution.grammar import check_name
from distribution.models import Label
from distribution.patterns import PatternInvalid, glob_check
from jobs.cron import cron_schedule
from projects.models import Project

from .exceptions import (
    EndpointExists,
    EndpointInUse,
    EndpointInvalid,
    PolicyExists,
    PolicyInvalid,
)
from .models import Direction, RegistryEndpoint, ReplicationPolicy, Trigger

NAME_MAX = 128
URL_MAX = 512


def _check_name(name: str, error: type[Exception]) -> str:
    name = name.strip()
    if not name:
        raise error("name: a name is required")
    if len(name) > NAME_MAX:
        raise error(f"name: at most {NAME_MAX} characters")
    if not name.isprintable():
        raise error("name: control characters are not allowed")
    return name


def _check_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if len(url) > URL_MAX:
        raise EndpointInvalid(f"url: at most {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as error:
        raise EndpointInvalid(f"url: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointInvalid(f"url: {url!r} is not of the form http(s)://host[:port]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise EndpointInvalid("url: no query, fragment or credentials in the URL")
    return url


# --- endpoints -----------------------------------------------------------------------------


def endpoint_create(
    *,
    name: str,
    url: str,
    username: str = "",
    password: str = "",
    verify_tls: bool = True,
    actor: Actor,
) -> RegistryEndpoint:
    """Record a remote registry (EndpointInvalid, EndpointExists)."""
    endpoint = endpoint_apply(
        endpoint=RegistryEndpoint(),
        name=name,
        url=url,
        username=username,
        password=password,
        verify_tls=verify_tls,
    )
    return _endpoint_save(endpoint, actor=actor, action="create")


def endpoint_update(
    *,
    endpoint: RegistryEndpoint,
    actor: Actor,
    name: str | None = None,
    url: str | None = None,
    username: str | None = None,
    password: str | None = None,
    verify_tls: bool | None = None,
) -> RegistryEndpoint:
    """Change a remote registry; a None argument keeps the value (a None password keeps it)."""
    endpoint_apply(
        endpoint=endpoint,
        name=name,
        url=url,
        username=username,
        password=password,
        verify_tls=verify_tls,
    )
    return _endpoint_save(endpoint, actor=actor, action="update")


def _endpoint_save(endpoint: RegistryEndpoint, *, actor: Actor, action: str) -> RegistryEndpoint:
    """Save a checked endpoint whose name no other has (EndpointExists), audited."""
    taken = EndpointExists(f"name: a registry named {endpoint.name!r} exists")
    try:
        with transaction.atomic():
            if RegistryEndpoint.objects.filter(name=endpoint.name).exclude(pk=endpoint.pk).exists():
                raise taken
            endpoint.save()
            audit_record(
                actor=actor,
                action=action,
                resource=f"registry:{endpoint.name}",
                detail={"url": endpoint.url},
            )
    except IntegrityError:  # another request took the name in between
        raise taken from None
    return endpoint


def endpoint_apply(
    *,
    endpoint: RegistryEndpoint,
    name: str | None = None,
    url: str | None = None,
    username: str | None = None,
    password: str | None = None,
    verify_tls: bool | None = None,
) -> RegistryEndpoint:
    """Set checked values on ``endpoint`` without saving it (for a ping of unsaved values)."""
    if name is not None:
        endpoint.name = _check_name(name, EndpointInvalid)
    if url is not None:
        endpoint.url = _check_url(url)
    if username is not None:
        endpoint.username = username
    if password is not None:
        endpoint.set_password(password)
    if verify_tls is not None:
        endpoint.verify_tls = verify_tls
    return endpoint


def endpoint_delete(*, endpoint: RegistryEndpoint, actor: Actor) -> None:
    """Delete a remote registry no policy and no proxy-cache project uses (EndpointInUse
    otherwise).  The endpoint's row is locked first: a proxy-cache project being created
    for it (proxycache.projects) locks it too, so one of the two waits for the other."""
    try:
        with transaction.atomic():
            RegistryEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
            caches = list(
                Project.objects.filter(registry_id=endpoint.pk).values_list("name", flat=True)[:5]
            )
            if caches:
                raise EndpointInUse(
                    f"registry {endpoint.name!r} is the upstream of proxy-cache project(s) "
                    + ", ".join(caches)
                )
            endpoint.delete()
            audit_record(actor=actor, action="delete", resource=f"registry:{endpoint.name}")
    except ProtectedError:
        raise EndpointInUse(f"registry {endpoint.name!r} is used by a policy") from None


# --- policies ------------------------------------------------------------------------------


def policy_create(
    *,
    name: str,
    endpoint: RegistryEndpoint,
    direction: str,
    actor: Actor,
    repository_filter: str = "**",
    tag_filter: str = "*",
    label_filter: Iterable[str] = (),
    destination_namespace: str = "",
    override: bool = True,
    enabled: bool = True,
    trigger: str = Trigger.MANUAL,
    schedule: str = "",
    replicate_deletion: bool = False,
) -> ReplicationPolicy:
    """Record a replication policy (PolicyInvalid, PolicyExists).

    ``direction`` is push (local to ``endpoint``) or pull; ``trigger`` manual,
    scheduled (``schedule`` a cron expression) or event_based (push only).
    A label filter and deletion replication are for push policies only.
    """
    policy = ReplicationPolicy(endpoint=endpoint)
    _policy_apply(
        policy,
        name=name,
        direction=direction,
        repository_filter=repository_filter,
        tag_filter=tag_filter,
        label_filter=list(label_filter),
        destination_namespace=destination_namespace,
        override=override,
        enabled=enabled,
        trigger=trigger,
        schedule=schedule,
        replicate_deletion=replicate_deletion,
    )
    return _policy_save(policy, actor, "create")


def policy_update(
    *,
    policy: ReplicationPolicy,
    actor: Actor,
    name: str | None = None,
    endpoint: RegistryEndpoint | None = None,
    direction: str | None = None,
    repository_filter: str | None = None,
    tag_filter: str | None = None,
    label_filter: Iterable[str] | None = None,
    destination_namespace: str | None = None,
    override: bool | None = None,
    enabled: bool | None = None,
    trigger: str | None = None,
    schedule: str | None = None,
    replicate_deletion: bool | None = None,
) -> ReplicationPolicy:
    """Change a policy; a None argument keeps the value.  The result is checked as a whole."""
    if endpoint is not None:
        policy.endpoint = endpoint
    _policy_apply(
        policy,
        name=name,
        direction=direction,
        repository_filter=repository_filter,
        tag_filter=tag_filter,
        label_filter=None if label_filter is None else list(label_filter),
        destination_namespace=destination_namespace,
        override=override,
        enabled=enabled,
        trigger=trigger,
        schedule=schedule,
        replicate_deletion=replicate_deletion,
    )
    return _policy_save(policy, actor, "update")


def policy_delete(*, policy: ReplicationPolicy, actor: Actor) -> None:
    """Delete a policy with its executions and their tasks."""
    with transaction.atomic():
        policy.delete()
        audit_record(actor=actor, action="delete", resource=f"replication-policy:{policy.name}")


def _policy_apply(policy: ReplicationPolicy, **given: Any) -> None:
    changes = {key: value for key, value in given.items() if value is not None}
    if "name" in changes:
        changes["name"] = _check_name(changes["name"], PolicyInvalid)
    for key in ("repository_filter", "tag_filter"):
        if key in changes:
            changes[key] = changes[key].strip() or ("**" if key == "repository_filter" else "*")
    if "destination_namespace" in changes:
        changes["destination_namespace"] = changes["destination_namespace"].strip().strip("/")
    if "schedule" in changes:
        changes["schedule"] = changes["schedule"].strip()
    for key, value in changes.items():
        setattr(policy, key, value)
    _policy_check(policy)


def _policy_check(policy: ReplicationPolicy) -> None:
    """Every rule a policy obeys, checked on the values it would be saved with."""
    push = policy.direction == Direction.PUSH
    if policy.direction not in Direction.values:
        raise PolicyInvalid(f"direction: {policy.direction!r} is not one of push, pull")
    for label, pattern in (("name", policy.repository_filter), ("tag", policy.tag_filter)):
        try:
            glob_check(pattern)
        except PatternInvalid as error:
            raise PolicyInvalid(f"filters: the {label} filter {pattern!r}: {error}") from None
    if policy.destination_namespace:
        try:
            check_name(policy.destination_namespace)
        except NameInvalid:
            raise PolicyInvalid(
                f"dest_namespace: {policy.destination_namespace!r} is not a repository path"
            ) from None
    if policy.trigger not in Trigger.values:
        raise PolicyInvalid(
            f"trigger: {policy.trigger!r} is not one of {', '.join(Trigger.values)}"
        )
    if policy.trigger == Trigger.SCHEDULED or policy.schedule:
        if not policy.schedule:
            raise PolicyInvalid("trigger: a scheduled trigger needs a cron schedule")
        try:
            cron_schedule(policy.schedule)
        except ValueError as error:
            raise PolicyInvalid(f"trigger: cron: {error}") from None
    if policy.trigger == Trigger.EVENT_BASED and not push:
        raise PolicyInvalid(
            "trigger: event-based replication reacts to pushes here, so it is for push policies"
        )
    _check_labels(policy.label_filter, push)
    if policy.replicate_deletion and not push:
        raise PolicyInvalid(
            "deletion: deleting at the destination is for push policies; "
            "a pull policy's source deletes nothing here"
        )


def _check_labels(names: Any, push: bool) -> None:
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise PolicyInvalid("filters: a label filter is a list of label names")
    if not names:
        return
    if not push:
        raise PolicyInvalid(
            "filters: a label filter is for push policies: "
            "labels of a remote registry's artifacts are not known here"
        )
    known = set(Label.objects.filter(name__in=names).values_list("name", flat=True))
    unknown = sorted(set(names) - known)
    if unknown:
        raise PolicyInvalid(f"filters: no label named {', '.join(map(repr, unknown))}")


def _policy_save(policy: ReplicationPolicy, actor: Actor, action: str) -> ReplicationPolicy:
    with transaction.atomic():
        taken = ReplicationPolicy.objects.filter(name=policy.name).exclude(pk=policy.pk)
        if taken.exists():
            raise PolicyExists(f"name: a replication policy named {policy.name!r} exists")
        policy.label_filter = sorted(set(policy.label_filter))
        policy.save()
        audit_record(
            actor=actor,
            action=action,
            resource=f"replication-policy:{policy.name}",
            detail=policy_summary(policy),
        )
    return policy


def policy_summary(policy: ReplicationPolicy) -> dict[str, Any]:
    """What a policy does, as plain values (for the audit log)."""
    return {
        "endpoint": policy.endpoint.name,
        "direction": policy.direction,
        "repository_filter": policy.repository_filter,
        "tag_filter": policy.tag_filter,
        "label_filter": policy.label_filter,
        "destination_namespace": policy.destination_namespace,
        "override": policy.override,
        "enabled": policy.enabled,
        "trigger": policy.trigger,
        "schedule": policy.schedule,
        "replicate_deletion": policy.replicate_deletion,
    }
