"""Replication over the REST API: endpoints, policies, executions and tasks; admins only."""

from __future__ import annotations

import time
from typing import Any

import pytest

from audit.models import AuditEntry
from tests.api.team import call, errors, team_fixture, team_password_hash_fixture  # noqa: F401
from tests.distribution.helpers import push_image
from tests.fixtures.server import ADMIN, LiveServer
from tests.replication.test_replication import (  # noqa: F401
    manifest_digest,
    replication_worker,
    unique,
)


def registry_body(url: str, password: str = ADMIN[1], **extra: Any) -> dict[str, Any]:
    return {
        "name": unique("endpoint"),
        "url": url,
        "credential": {"type": "basic", "access_key": ADMIN[0], "access_secret": password},
        **extra,
    }


def test_registry_crud_never_returns_the_secret(registry: LiveServer) -> None:
    body = registry_body(registry.url, insecure=True)
    created = call(registry, "POST", "registries", json=body)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert created.headers["Location"] == f"/api/v2.0/registries/{endpoint['id']}"
    assert endpoint["credential"] == {"type": "basic", "access_key": ADMIN[0]}
    assert endpoint["insecure"] is True and endpoint["creation_time"]
    assert ADMIN[1] not in created.text

    path = f"registries/{endpoint['id']}"
    got = call(registry, "GET", path)
    assert got.json() == endpoint and ADMIN[1] not in got.text
    listed = call(registry, "GET", "registries")
    assert listed.status_code == 200 and ADMIN[1] not in listed.text
    assert endpoint["id"] in [e["id"] for e in listed.json()]

    changed = call(registry, "PUT", path, json={"insecure": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["insecure"] is False
    # the password was kept: the saved endpoint still answers
    assert call(registry, "POST", "registries/ping", json={"id": endpoint["id"]}).status_code == 200

    assert call(registry, "POST", "registries", json=body).status_code == 409  # name taken
    assert call(registry, "DELETE", path).status_code == 200
    assert call(registry, "GET", path).status_code == 404
    assert AuditEntry.objects.filter(resource=f"registry:{body['name']}").count() == 3


def test_admins_only(registry: LiveServer, team) -> None:
    for path in ("registries", "replication/policies", "replication/executions"):
        assert call(registry, "GET", path, "anonymous").status_code == 401
        refused = call(registry, "GET", path, "pat")
        assert refused.status_code == 403 and errors(refused) == ["FORBIDDEN"]
    body = registry_body(registry.url)
    assert call(registry, "POST", "registries", "dev", json=body).status_code == 403


def test_ping_with_wrong_credentials_says_why(registry: LiveServer) -> None:
    ok = call(registry, "POST", "registries/ping", json=registry_body(registry.url))
    assert ok.status_code == 200, ok.text
    wrong = call(registry, "POST", "registries/ping", json=registry_body(registry.url, "nope"))
    assert wrong.status_code == 400 and errors(wrong) == ["BAD_REQUEST"]
    assert "refused the credentials" in wrong.json()["errors"][0]["message"]
    assert call(registry, "POST", "registries/ping", json={}).status_code == 400


def test_policy_crud_in_harbors_shape(registry: LiveServer) -> None:
    endpoint = call(registry, "POST", "registries", json=registry_body(registry.url)).json()
    body = {
        "name": unique("policy"),
        "dest_registry": {"id": endpoint["id"]},
        "filters": [{"type": "name", "value": "library/**"}, {"type": "tag", "value": "v*"}],
        "dest_namespace": "prod",
        "override": False,
    }
    created = call(registry, "POST", "replication/policies", json=body)
    assert created.status_code == 201, created.text
    policy = created.json()
    assert policy["dest_registry"] == {"id": endpoint["id"], "name": endpoint["name"]}
    assert policy["src_registry"] is None
    assert policy["filters"] == body["filters"]
    assert (policy["dest_namespace"], policy["override"], policy["enabled"]) == (
        "prod",
        False,
        True,
    )
    path = f"replication/policies/{policy['id']}"
    assert call(registry, "GET", path).json() == policy

    # pull instead, disabled
    changed = call(
        registry, "PUT", path, json={"src_registry": {"id": endpoint["id"]}, "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["dest_registry"] is None and changed.json()["enabled"] is False
    assert changed.json()["src_registry"]["id"] == endpoint["id"]
    # a disabled policy does not start
    refused = call(registry, "POST", "replication/executions", json={"policy_id": policy["id"]})
    assert refused.status_code == 400 and "disabled" in refused.text

    both = {**body, "name": unique("policy"), "src_registry": {"id": endpoint["id"]}}
    assert call(registry, "POST", "replication/policies", json=both).status_code == 400
    # the endpoint is in use
    in_use = call(registry, "DELETE", f"registries/{endpoint['id']}")
    assert in_use.status_code == 412, in_use.text
    assert call(registry, "DELETE", path).status_code == 200
    assert call(registry, "GET", path).status_code == 404


def test_policy_triggers_labels_and_deletion_in_harbors_shape(registry: LiveServer) -> None:
    from distribution.models import Label

    approved = Label.objects.create(name=unique("approved"), scope=Label.GLOBAL).name
    endpoint = call(registry, "POST", "registries", json=registry_body(registry.url)).json()
    body = {
        "name": unique("policy"),
        "dest_registry": {"id": endpoint["id"]},
        "filters": [
            {"type": "name", "value": "library/**"},
            {"type": "tag", "value": "*"},
            {"type": "label", "value": [approved]},
        ],
        "trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 */5 * * * *"}},
        "deletion": True,
    }
    created = call(registry, "POST", "replication/policies", json=body)
    assert created.status_code == 201, created.text
    policy = created.json()
    assert policy["filters"] == body["filters"] and policy["deletion"] is True
    assert policy["trigger"] == body["trigger"]
    path = f"replication/policies/{policy['id']}"
    assert call(registry, "GET", path).json() == policy

    changed = call(registry, "PUT", path, json={"trigger": {"type": "event_based"}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["trigger"] == {"type": "event_based", "trigger_settings": {"cron": ""}}
    assert changed.json()["filters"] == body["filters"]  # not given: kept

    refusals = [
        ({"trigger": {"type": "scheduled", "trigger_settings": {"cron": "every day"}}}, "cron"),
        ({"trigger": {"type": "scheduled"}}, "needs a cron schedule"),
        ({"trigger": {"type": "sometimes"}}, "trigger.type"),
        ({"filters": [{"type": "label", "value": ["no-such-label-here"]}]}, "no label named"),
        ({"filters": [{"type": "label", "value": 7}]}, "list of names"),
        ({"filters": [{"type": "name", "value": ["a"]}]}, "is a glob"),
        ({"filters": [{"type": "tag", "value": "v{1"}]}, "tag filter"),
        ({"src_registry": {"id": endpoint["id"]}}, "push policies"),  # pull + event/labels
        ({"name": ""}, "name"),
    ]
    for change, message in refusals:
        refused = call(registry, "PUT", path, json=change)
        assert refused.status_code == 400, (change, refused.text)
        assert errors(refused) == ["BAD_REQUEST"] and message in refused.text, refused.text
    assert call(registry, "GET", path).json() == changed.json()  # nothing changed
    taken = call(registry, "POST", "replication/policies", json=body)
    assert taken.status_code == 409 and errors(taken) == ["CONFLICT"]
    entry = AuditEntry.objects.filter(resource=f"replication-policy:{body['name']}").latest("pk")
    assert entry.action == "update" and entry.detail["trigger"] == "event_based"


@pytest.mark.usefixtures("replication_worker")
def test_an_execution_started_over_the_api(
    registry: LiveServer, client_registry: LiveServer
) -> None:
    name = unique("library/apirepl")
    image = push_image(registry, name, "v1")
    endpoint = call(registry, "POST", "registries", json=registry_body(client_registry.url))
    assert endpoint.status_code == 201, endpoint.text
    policy = call(
        registry,
        "POST",
        "replication/policies",
        json={
            "name": unique("policy"),
            "dest_registry": {"id": endpoint.json()["id"]},
            "filters": [{"type": "name", "value": name}],
            "dest_namespace": "test",
        },
    ).json()

    started = call(registry, "POST", "replication/executions", json={"policy_id": policy["id"]})
    assert started.status_code == 201, started.text
    location = started.headers["Location"]
    assert location == f"/api/v2.0/replication/executions/{started.json()['id']}"

    deadline = time.monotonic() + 60
    while True:
        execution = call(registry, "GET", location.removeprefix("/api/v2.0/")).json()
        if execution["status"] not in ("pending", "running"):
            break
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.2)
    assert execution["status"] == "succeeded", execution
    assert execution["total"] == execution["succeed"] == 1 and execution["end_time"]

    listed = call(registry, "GET", "replication/executions", params={"policy_id": policy["id"]})
    assert [e["id"] for e in listed.json()] == [execution["id"]]
    tasks = call(registry, "GET", f"replication/executions/{execution['id']}/tasks")
    assert tasks.status_code == 200 and tasks.headers["X-Total-Count"] == "1"
    (task,) = tasks.json()
    assert task["resource_type"] == "image" and task["status"] == "succeeded"
    assert task["operation"] == "copy" and execution["trigger"] == "manual"
    target = "test/" + name.split("/", 1)[1]
    assert (task["src_resource"], task["dst_resource"]) == (f"{name}:v1", f"{target}:v1")
    assert task["bytes"] > 0 and task["start_time"] and task["end_time"]
    assert manifest_digest(client_registry.url, target, "v1") == image.digest

    # stopping a finished execution changes nothing
    stop = call(registry, "PUT", location.removeprefix("/api/v2.0/"))
    assert stop.status_code == 200
    assert AuditEntry.objects.filter(
        action="replicate", resource=f"replication-policy:{policy['name']}"
    ).exists()
