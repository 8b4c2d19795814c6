"""The services that write endpoints and policies: every value checked, every write audited."""

from __future__ import annotations

import uuid

import pytest

from audit.models import AuditEntry
from audit.services import Actor
from distribution.models import Label
from replication.exceptions import (
    EndpointExists,
    EndpointInUse,
    EndpointInvalid,
    PolicyExists,
    PolicyInvalid,
)
from replication.models import RegistryEndpoint, ReplicationPolicy
from replication.policies import (
    endpoint_create,
    endpoint_delete,
    endpoint_update,
    policy_create,
    policy_delete,
    policy_update,
)

ACTOR = Actor("admin", "127.0.0.1")
pytestmark = pytest.mark.django_db


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def endpoint() -> RegistryEndpoint:
    return endpoint_create(name=unique("remote"), url="https://registry.example:5000", actor=ACTOR)


def test_endpoint_lifecycle_is_audited() -> None:
    name = unique("remote")
    created = endpoint_create(
        name=f"  {name} ", url="http://127.0.0.1:5000/", username="u", password="p", actor=ACTOR
    )
    assert (created.name, created.url, created.verify_tls) == (name, "http://127.0.0.1:5000", True)
    endpoint_update(endpoint=created, verify_tls=False, actor=ACTOR)
    created.refresh_from_db()
    assert created.verify_tls is False and created.secret == "p"  # None kept the password
    endpoint_delete(endpoint=created, actor=ACTOR)
    assert not RegistryEndpoint.objects.filter(pk=created.pk).exists()
    actions = AuditEntry.objects.filter(resource=f"registry:{name}").values_list(
        "action", flat=True
    )
    assert sorted(actions) == ["create", "delete", "update"]


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [
        ("", "https://r.example", "name is required"),
        ("x" * 129, "https://r.example", "at most 128"),
        ("tab\there", "https://r.example", "control characters"),
        ("ok", "ftp://r.example", "http(s)://host"),
        ("ok", "r.example:5000", "http(s)://host"),
        ("ok", "https://", "http(s)://host"),
        ("ok", "https://r.example:port", "url:"),
        ("ok", "https://user:pw@r.example", "no query"),
        ("ok", "https://r.example/?a=b", "no query"),
    ],
)
def test_endpoint_values_are_checked(name: str, url: str, message: str) -> None:
    with pytest.raises(EndpointInvalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        endpoint_create(name=name, url=url, actor=ACTOR)
    assert not RegistryEndpoint.objects.filter(url=url).exists()


def test_endpoint_names_are_unique_and_used_endpoints_stay(endpoint: RegistryEndpoint) -> None:
    with pytest.raises(EndpointExists):
        endpoint_create(name=endpoint.name, url="https://other.example", actor=ACTOR)
    other = endpoint_create(name=unique("remote"), url="https://other.example", actor=ACTOR)
    with pytest.raises(EndpointExists):
        endpoint_update(endpoint=other, name=endpoint.name, actor=ACTOR)
    policy_create(name=unique("policy"), endpoint=endpoint, direction="push", actor=ACTOR)
    with pytest.raises(EndpointInUse, match="used by a policy"):
        endpoint_delete(endpoint=endpoint, actor=ACTOR)
    assert RegistryEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_policy_with_every_option(endpoint: RegistryEndpoint) -> None:
    label = Label.objects.create(name=unique("approved"), scope=Label.GLOBAL)
    policy = policy_create(
        name=unique("policy"),
        endpoint=endpoint,
        direction="push",
        repository_filter="library/**",
        tag_filter="v*",
        label_filter=[label.name, label.name],
        destination_namespace="/prod/",
        trigger="scheduled",
        schedule="*/5 * * * *",
        replicate_deletion=True,
        actor=ACTOR,
    )
    policy.refresh_from_db()
    assert policy.label_filter == [label.name]
    assert (policy.destination_namespace, policy.trigger, policy.schedule) == (
        "prod",
        "scheduled",
        "*/5 * * * *",
    )
    policy_update(policy=policy, trigger="event_based", schedule="", actor=ACTOR)
    policy.refresh_from_db()
    assert (policy.trigger, policy.schedule, policy.replicate_deletion) == ("event_based", "", True)
    entries = AuditEntry.objects.filter(resource=f"replication-policy:{policy.name}")
    assert entries.count() == 2
    assert entries.latest("pk").detail["trigger"] == "event_based"
    policy_delete(policy=policy, actor=ACTOR)
    assert not ReplicationPolicy.objects.filter(pk=policy.pk).exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": " "}, "name is required"),
        ({"direction": "sideways"}, "direction"),
        ({"repository_filter": "library/{a"}, "name filter"),
        ({"tag_filter": "v[1"}, "tag filter"),
        ({"destination_namespace": "Prod Team"}, "dest_namespace"),
        ({"trigger": "hourly"}, "trigger: 'hourly'"),
        ({"trigger": "scheduled"}, "needs a cron schedule"),
        ({"trigger": "scheduled", "schedule": "every day"}, "cron"),
        ({"trigger": "scheduled", "schedule": "61 * * * *"}, "cron"),
        ({"label_filter": ["no-such-label-anywhere"]}, "no label named"),
        ({"direction": "pull", "trigger": "event_based"}, "for push policies"),
        ({"direction": "pull", "replicate_deletion": True}, "deletion: .* push policies"),
        ({"direction": "pull", "label_filter": ["x"]}, "label filter is for push policies"),
    ],
)
def test_policy_values_are_checked(endpoint: RegistryEndpoint, values: dict, message: str) -> None:
    arguments = {"name": unique("policy"), "direction": "push", **values}
    with pytest.raises(PolicyInvalid, match=message):
        policy_create(endpoint=endpoint, actor=ACTOR, **arguments)
    assert not ReplicationPolicy.objects.filter(endpoint=endpoint).exists()


def test_an_update_is_checked_as_a_whole(endpoint: RegistryEndpoint) -> None:
    policy = policy_create(
        name=unique("policy"),
        endpoint=endpoint,
        direction="push",
        trigger="event_based",
        actor=ACTOR,
    )
    with pytest.raises(PolicyInvalid, match="for push policies"):
        policy_update(policy=policy, direction="pull", actor=ACTOR)
    policy.refresh_from_db()
    assert policy.direction == "push"
    other = policy_create(name=unique("policy"), endpoint=endpoint, direction="pull", actor=ACTOR)
    with pytest.raises(PolicyExists):
        policy_update(policy=other, name=policy.name, actor=ACTOR)
    with pytest.raises(PolicyExists):
        policy_create(name=policy.name, endpoint=endpoint, direction="push", actor=ACTOR)
