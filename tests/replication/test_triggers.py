"""Triggers with real components: pushes and deletes on a live server start executions that
a Celery worker on Redis carries out against Debian's docker-registry or a second server;
schedules, label filters and stalled executions through the services."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from django.utils import timezone

from distribution.models import ArtifactLabel, Label, Manifest
from replication.models import (
    Direction,
    Execution,
    RegistryEndpoint,
    ReplicationPolicy,
    Status,
    Task,
    Trigger,
)
from replication.services import (
    execution_cancel,
    execution_create,
    execution_run,
    executions_fail_stalled,
    replication_scheduled,
)
from tests.distribution.helpers import push_image, wait_until
from tests.fixtures.clients import SampleImages, docker_registry, skopeo
from tests.fixtures.server import ADMIN, LiveServer, free_port
from tests.replication.test_replication import (
    manifest_digest,
    push_signature,
    referrer_digests,
    replication_worker,
    unique,
)

__all__ = ["replication_worker"]  # a fixture these tests use

NO_TLS = "--dest-tls-verify=false"


def event_policy(
    url: str, repository_filter: str, *, credentials: tuple[str, str] | None = None, **fields: Any
) -> ReplicationPolicy:
    """An enabled event-based push policy (saved as is: around the services' checks)."""
    username, password = credentials or ("", "")
    endpoint = RegistryEndpoint.objects.create(
        name=unique("endpoint"), url=url, username=username, password=password
    )
    return ReplicationPolicy.objects.create(
        name=unique("policy"),
        endpoint=endpoint,
        direction=Direction.PUSH,
        repository_filter=repository_filter,
        trigger=Trigger.EVENT_BASED,
        **fields,
    )


def skopeo_push(sample: SampleImages, server: LiveServer, name: str, tag: str) -> float:
    """Push the sample image with skopeo as the admin; how long the push took."""
    began = time.monotonic()
    skopeo(
        "copy",
        NO_TLS,
        "--dest-creds",
        ":".join(ADMIN),
        sample.oci("single"),
        f"docker://{server.host}/{name}:{tag}",
    )
    return time.monotonic() - began


def executions_of(policy: ReplicationPolicy, count: int, timeout: float = 30) -> list[Execution]:
    """Wait until ``count`` executions of the policy have ended; them, oldest first."""

    def ended() -> bool:
        runs = Execution.objects.filter(policy=policy)
        return (
            runs.count() >= count
            and not runs.filter(status__in=[Status.PENDING, Status.RUNNING]).exists()
        )

    assert wait_until(ended, timeout=timeout), list(
        Execution.objects.filter(policy=policy).values("status", "error")
    )
    return list(Execution.objects.filter(policy=policy).order_by("pk"))


def rest(server: LiveServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, f"{server.url}/api/v2.0/{path}", auth=ADMIN, timeout=30, **kwargs
    )


def test_push_and_delete_are_replicated_to_the_reference_registry(
    registry: LiveServer,
    reference_registry: str,
    sample_images: SampleImages,
    replication_worker,
) -> None:
    remote = f"http://{reference_registry}"
    name = unique("library/event")
    policy = event_policy(remote, name, replicate_deletion=True)

    skopeo_push(sample_images, registry, name, "v1")
    local = manifest_digest(registry.url, name, "v1")
    assert wait_until(lambda: manifest_digest(remote, name, "v1", auth=None) == local, 15)
    [pushed] = executions_of(policy, 1)
    assert (pushed.trigger, pushed.status, pushed.total) == ("event_based", "succeeded", 1)
    assert pushed.heartbeat_at is not None and pushed.heartbeat_at >= pushed.started_at
    task = pushed.tasks.get()
    assert (task.operation, task.source, task.digest) == ("copy", f"{name}:v1", local)

    # Deleted here by digest over /v2/: deleted there.
    deleted = requests.delete(f"{registry.url}/v2/{name}/manifests/{local}", auth=ADMIN, timeout=30)
    assert deleted.status_code == 202, deleted.text
    assert wait_until(lambda: manifest_digest(remote, name, local, auth=None) is None, 15)
    removal = executions_of(policy, 2)[-1]
    assert removal.status == "succeeded", list(removal.tasks.values("error"))
    assert list(removal.tasks.values_list("operation", "destination")) == [
        ("delete", f"{name}@{local}")
    ]

    # Deleted over the REST API: the artifact, then a tag whose artifact keeps no other tag
    # (Docker's registry deletes no tag alone: the artifact goes by digest).
    repo = name.split("/", 1)[1]
    for tag in ("v2", "v3"):
        skopeo_push(sample_images, registry, name, tag)
        assert wait_until(lambda t=tag: manifest_digest(remote, name, t, auth=None) == local, 15)
    artifacts = f"projects/library/repositories/{repo}/artifacts"
    assert rest(registry, "DELETE", f"{artifacts}/v2/tags/v3").status_code == 200
    # v2 still names the artifact here: the destination keeps it
    executions_of(policy, 5)
    assert manifest_digest(remote, name, "v2", auth=None) == local
    assert rest(registry, "DELETE", f"{artifacts}/{local}").status_code == 200
    assert wait_until(lambda: manifest_digest(remote, name, "v2", auth=None) is None, 15)
    runs = executions_of(policy, 6)
    failed_tag_delete, artifact_delete = runs[-2], runs[-1]
    assert failed_tag_delete.status == "failed"
    assert "cannot delete the tag v3 alone" in failed_tag_delete.tasks.get().error
    assert artifact_delete.status == "succeeded"
    assert artifact_delete.tasks.get().destination == f"{name}@{local}"
    # Nothing is left to delete: a 404 there counts as done.
    again = Execution.objects.create(policy=policy, trigger="event_based")
    Task.objects.create(
        execution=again,
        operation="delete",
        source=f"{name}@{local}",
        destination=f"{name}@{local}",
        digest=local,
    )
    done = execution_run(execution_id=again.pk)
    assert done.status == "succeeded"
    assert done.tasks.get().error == "not at the destination: nothing to delete"


def test_tag_deleted_on_a_harborpy_destination(
    registry: LiveServer, client_registry: LiveServer, replication_worker
) -> None:
    name = unique("library/tags")
    policy = event_policy(
        client_registry.url,
        name,
        credentials=ADMIN,
        replicate_deletion=True,
        destination_namespace="test",
    )
    image = push_image(registry, name, "v1")
    target = "test/" + name.split("/", 1)[1]
    assert wait_until(
        lambda: manifest_digest(client_registry.url, target, "v1") == image.digest, 15
    )
    # A second tag on the same artifact, over the REST API: a push event too.
    repo = name.split("/", 1)[1]
    tags = f"projects/library/repositories/{repo}/artifacts/v1/tags"
    assert rest(registry, "POST", tags, json={"name": "v2"}).status_code == 201
    assert wait_until(
        lambda: manifest_digest(client_registry.url, target, "v2") == image.digest, 15
    )
    # Deleting one tag deletes only that tag there (harborpy deletes tags alone).
    assert rest(registry, "DELETE", f"{tags}/v2").status_code == 200
    assert wait_until(lambda: manifest_digest(client_registry.url, target, "v2") is None, 15)
    assert manifest_digest(client_registry.url, target, "v1") == image.digest
    runs = executions_of(policy, 3)
    assert [r.status for r in runs] == ["succeeded"] * 3
    assert runs[-1].tasks.get().destination == f"{target}:v2"
    # The whole repository deleted over the REST API: its artifact goes there too.
    assert rest(registry, "DELETE", f"projects/library/repositories/{repo}").status_code == 200
    assert wait_until(
        lambda: manifest_digest(client_registry.url, target, image.digest) is None, 15
    )
    assert manifest_digest(client_registry.url, target, "v1") is None
    assert executions_of(policy, 4)[-1].tasks.get().destination == f"{target}@{image.digest}"


def test_retention_removals_are_replicated(
    registry: LiveServer, client_registry: LiveServer, replication_worker
) -> None:
    from audit.services import SYSTEM
    from distribution.retention import retention_policy_set, retention_run
    from projects.models import Project

    name = unique("lib/kept")
    policy = event_policy(
        client_registry.url,
        name,
        credentials=ADMIN,
        replicate_deletion=True,
        destination_namespace="test",
    )
    old = push_image(registry, name, "old")
    new = push_image(registry, name, "new")
    target = "test/" + name.split("/", 1)[1]
    assert wait_until(lambda: manifest_digest(client_registry.url, target, "new") == new.digest, 15)
    executions_of(policy, 2)
    retention = retention_policy_set(
        project=Project.objects.get(name="lib"),
        rules=[{"latestPushedK": 1}],
        schedule="",
        actor=SYSTEM,
    )

    run = retention_run(policy=retention, dry_run=False)

    assert run.deleted == 1
    assert wait_until(lambda: manifest_digest(client_registry.url, target, old.digest) is None, 15)
    assert manifest_digest(client_registry.url, target, "new") == new.digest
    removal = executions_of(policy, 3)[-1]
    assert list(removal.tasks.values_list("operation", "destination")) == [
        ("delete", f"{target}@{old.digest}")
    ]


def test_a_referrer_pushed_later_follows_its_subject(
    registry: LiveServer, client_registry: LiveServer, replication_worker
) -> None:
    name = unique("library/referred")
    remote = "test/" + name.split("/", 1)[1]
    policy = event_policy(
        client_registry.url,
        name,
        credentials=ADMIN,
        destination_namespace="test",
        tag_filter="v*",
    )
    image = push_image(registry, name, "v1")
    assert wait_until(lambda: manifest_digest(client_registry.url, remote, "v1"), 15)
    executions_of(policy, 1)
    dev = push_image(registry, name, "dev")  # not taken by the tag filter

    push_signature(registry, name, dev)  # its subject is not taken: nothing starts
    signature = push_signature(registry, name, image)  # by digest, after v1 was copied

    assert wait_until(
        lambda: referrer_digests(client_registry.url, remote, image.digest) == [signature], 15
    )
    runs = executions_of(policy, 2)
    assert len(runs) == 2  # the dev signature's push (before this one) started nothing
    task = runs[1].tasks.get()
    assert (runs[1].trigger, runs[1].status) == ("event_based", "succeeded")
    assert (task.source, task.destination) == (f"{name}@{signature}", f"{remote}@{signature}")
    assert manifest_digest(client_registry.url, remote, signature) == signature
    assert manifest_digest(client_registry.url, remote, dev.digest) is None


def test_a_failing_receiver_or_endpoint_leaves_the_push_alone(
    registry: LiveServer, sample_images: SampleImages, replication_worker
) -> None:
    name = unique("library/unreachable")
    dead = event_policy(f"http://127.0.0.1:{free_port()}", name)
    # A filter that cannot be read (saved around the checks): the receiver itself fails.
    broken = event_policy(f"http://127.0.0.1:{free_port()}", "library/{broken")
    baseline = skopeo_push(sample_images, registry, unique("library/baseline"), "v1")

    took = skopeo_push(sample_images, registry, name, "v1")

    assert manifest_digest(registry.url, name, "v1") is not None
    assert took < baseline + 5, (took, baseline)
    [execution] = executions_of(dead, 1, timeout=60)
    assert execution.status == "failed"
    assert "connection refused" in execution.tasks.get().error
    assert not Execution.objects.filter(policy=broken).exists()
    log = registry.log_text()
    assert f"event-based replication of policy {broken.name} failed" in log  # logged, caught


def test_replications_own_writes_start_nothing(
    registry: LiveServer, client_registry: LiveServer, settings
) -> None:
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    name = unique("library/pulled")
    image = push_image(client_registry, name, "v1")
    watcher = event_policy(f"http://127.0.0.1:{free_port()}", "**")
    endpoint = RegistryEndpoint.objects.create(
        name=unique("endpoint"), url=client_registry.url, username=ADMIN[0], password=ADMIN[1]
    )
    pull = ReplicationPolicy.objects.create(
        name=unique("policy"), endpoint=endpoint, direction=Direction.PULL, repository_filter=name
    )

    done = execution_run(execution_id=execution_create(policy=pull).pk)

    assert done.status == "succeeded"
    assert manifest_digest(registry.url, name, "v1") == image.digest
    assert not Execution.objects.filter(policy=watcher).exists()


def label(name: str, manifest_digest_: str, repository: str) -> Label:
    found, _ = Label.objects.get_or_create(name=name, project=None, defaults={"scope": "g"})
    manifest = Manifest.objects.get(repository__name=repository, digest=manifest_digest_)
    ArtifactLabel.objects.create(manifest=manifest, label=found)
    return found


def test_label_filter_copies_only_labelled_artifacts(
    registry: LiveServer, client_registry: LiveServer, settings, replication_worker
) -> None:
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    name = unique("library/labelled")
    approved, other = unique("approved"), unique("other")
    both = push_image(registry, name, "both")
    one = push_image(registry, name, "one")
    push_image(registry, name, "none")
    for digest in (both.digest,):
        label(approved, digest, name)
        label(other, digest, name)
    label(approved, one.digest, name)
    endpoint = RegistryEndpoint.objects.create(
        name=unique("endpoint"), url=client_registry.url, username=ADMIN[0], password=ADMIN[1]
    )
    policy = ReplicationPolicy.objects.create(
        name=unique("policy"),
        endpoint=endpoint,
        direction=Direction.PUSH,
        repository_filter=name,
        destination_namespace="test",
        label_filter=[approved, other],
    )
    target = "test/" + name.split("/", 1)[1]

    planned = execution_run(execution_id=execution_create(policy=policy).pk)

    assert planned.status == "succeeded" and planned.total == 1
    assert manifest_digest(client_registry.url, target, "both") == both.digest
    assert manifest_digest(client_registry.url, target, "one") is None
    assert manifest_digest(client_registry.url, target, "none") is None

    # Events: a new tag on the labelled artifact is copied, one on an unlabelled one is not.
    ReplicationPolicy.objects.filter(pk=policy.pk).update(
        trigger=Trigger.EVENT_BASED, label_filter=[approved]
    )
    repo = name.split("/", 1)[1]
    for tag, on in (("one-again", "one"), ("none-again", "none")):
        path = f"projects/library/repositories/{repo}/artifacts/{on}/tags"
        assert rest(registry, "POST", path, json={"name": tag}).status_code == 201
    assert wait_until(
        lambda: manifest_digest(client_registry.url, target, "one-again") == one.digest, 15
    )
    runs = executions_of(policy, 2)
    assert [r.trigger for r in runs] == ["manual", "event_based"]
    assert manifest_digest(client_registry.url, target, "none-again") is None


def test_the_beat_runs_the_scheduler_every_minute_unless_turned_off(settings) -> None:
    from celery.schedules import crontab

    from harborpy.celery import beat_schedule

    entry = beat_schedule(settings)["replication"]
    assert entry["task"] == "replication.scheduled" and entry["schedule"] == crontab()
    settings.HARBORPY_REPLICATION_SCHEDULER = False
    assert "replication" not in beat_schedule(settings)


@pytest.mark.django_db
def test_a_scheduled_policy_runs_once_in_each_due_minute() -> None:
    endpoint = RegistryEndpoint.objects.create(name=unique("endpoint"), url="http://127.0.0.1:1")
    due = ReplicationPolicy.objects.create(
        name=unique("policy"),
        endpoint=endpoint,
        direction=Direction.PUSH,
        trigger=Trigger.SCHEDULED,
        schedule="*/15 * * * *",
    )
    ReplicationPolicy.objects.create(  # disabled: never
        name=unique("policy"),
        endpoint=endpoint,
        direction=Direction.PUSH,
        trigger=Trigger.SCHEDULED,
        schedule="* * * * *",
        enabled=False,
    )
    ReplicationPolicy.objects.create(  # manual: never, whatever its schedule says
        name=unique("policy"), endpoint=endpoint, direction=Direction.PUSH, schedule="* * * * *"
    )
    noon = timezone.make_aware(datetime(2026, 3, 2, 12, 0, 5))

    first = replication_scheduled(now=noon)
    again = replication_scheduled(now=noon + timedelta(seconds=40))  # the same minute
    not_due = replication_scheduled(now=noon + timedelta(minutes=1))
    next_due = replication_scheduled(now=noon + timedelta(minutes=15, seconds=1))

    assert [e.policy_id for e in first] == [due.pk]
    assert again == [] and not_due == []
    assert [e.policy_id for e in next_due] == [due.pk]
    runs = Execution.objects.filter(policy__endpoint=endpoint)
    assert runs.count() == 2 and set(runs.values_list("trigger", flat=True)) == {"scheduled"}
    due.refresh_from_db()
    assert due.scheduled_at == noon.replace(second=0) + timedelta(minutes=15)


def test_a_stalled_execution_is_failed_and_the_policy_runs_again(
    registry: LiveServer, client_registry: LiveServer, settings
) -> None:
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    settings.HARBORPY_REPLICATION_STALL_SECONDS = 600
    name = unique("library/stalled")
    image = push_image(registry, name, "v1")
    endpoint = RegistryEndpoint.objects.create(
        name=unique("endpoint"), url=client_registry.url, username=ADMIN[0], password=ADMIN[1]
    )
    policy = ReplicationPolicy.objects.create(
        name=unique("policy"),
        endpoint=endpoint,
        direction=Direction.PUSH,
        repository_filter=name,
        destination_namespace="test",
    )
    now = timezone.now()
    lost = Execution.objects.create(
        policy=policy,
        status=Status.RUNNING,
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(minutes=11),
    )
    Task.objects.create(execution=lost, source=f"{name}:v1", destination="x:v1", status="running")
    Task.objects.create(execution=lost, source=f"{name}:v2", destination="x:v2")
    Task.objects.create(execution=lost, source=f"{name}:v0", destination="x:v0", status="succeeded")
    alive = Execution.objects.create(
        policy=policy,
        status=Status.RUNNING,
        started_at=now - timedelta(hours=1),
        heartbeat_at=now - timedelta(minutes=9),
    )

    [marked] = executions_fail_stalled()

    assert marked.pk == lost.pk and marked.status == "failed"
    assert marked.error.startswith("stalled: no heartbeat from its worker since ")
    assert (marked.total, marked.succeeded, marked.failed) == (3, 1, 2)
    assert set(marked.tasks.values_list("status", flat=True)) == {"failed", "succeeded"}
    alive.refresh_from_db()
    assert alive.status == "running"
    assert executions_fail_stalled() == []  # marked once

    # A new execution of the policy runs; a slow worker that comes back stops at its next
    # task and leaves the stall mark alone.
    rerun = execution_run(execution_id=execution_create(policy=policy).pk)
    assert rerun.status == "succeeded"
    assert manifest_digest(client_registry.url, "test/" + name.split("/", 1)[1], "v1") == (
        image.digest
    )
    push_image(registry, name, "v2")
    slow = execution_create(policy=policy)

    def stall_after_the_first(line: str) -> None:
        if line.startswith("succeeded"):
            executions_fail_stalled(now=timezone.now() + timedelta(hours=1))

    ended = execution_run(execution_id=slow.pk, progress=stall_after_the_first)
    assert ended.status == "failed" and ended.error.startswith("stalled")
    assert list(ended.tasks.order_by("pk").values_list("status", flat=True)) == [
        "succeeded",
        "failed",
    ]


def test_a_cancelled_execution_whose_worker_died_is_finished(transactional_db, settings) -> None:
    settings.HARBORPY_REPLICATION_STALL_SECONDS = 600
    endpoint = RegistryEndpoint.objects.create(name=unique("endpoint"), url="http://127.0.0.1:9")
    policy = ReplicationPolicy.objects.create(
        name=unique("policy"), endpoint=endpoint, direction=Direction.PUSH
    )
    now = timezone.now()
    runs = {}
    for name, beat in (("dead", timedelta(minutes=11)), ("slow", timedelta(minutes=9))):
        runs[name] = Execution.objects.create(
            policy=policy,
            status=Status.RUNNING,
            started_at=now - timedelta(hours=1),
            heartbeat_at=now - beat,
        )
        for tag, status in (("v0", "succeeded"), ("v1", "running"), ("v2", "pending")):
            Task.objects.create(
                execution=runs[name], source=f"a:{tag}", destination=f"b:{tag}", status=status
            )
        assert execution_cancel(execution=runs[name])  # accepted; its worker then dies

    [marked] = executions_fail_stalled()

    assert marked.pk == runs["dead"].pk
    assert marked.status == "cancelled" and marked.finished_at is not None
    assert marked.error.startswith("stalled: no heartbeat from its worker since ")
    assert list(marked.tasks.order_by("source").values_list("status", flat=True)) == [
        "succeeded",
        "cancelled",
        "cancelled",
    ]
    assert (marked.total, marked.succeeded, marked.failed) == (3, 1, 0)
    slow = Execution.objects.get(pk=runs["slow"].pk)
    assert slow.status == "cancelled" and slow.finished_at is None  # its worker may yet end it
    assert executions_fail_stalled() == []  # finished once


def test_a_destination_refusing_deletes_fails_the_task_clearly(
    registry: LiveServer, replication_worker
) -> None:
    name = unique("library/nodelete")
    with docker_registry(delete=False) as host:
        remote = f"http://{host}"
        policy = event_policy(remote, name, replicate_deletion=True)
        image = push_image(registry, name, "v1")
        assert wait_until(
            lambda: manifest_digest(remote, name, "v1", auth=None) == image.digest, 15
        )
        executions_of(policy, 1)
        deleted = requests.delete(
            f"{registry.url}/v2/{name}/manifests/{image.digest}", auth=ADMIN, timeout=30
        )
        assert deleted.status_code == 202
        refused = executions_of(policy, 2)[-1]
        assert manifest_digest(remote, name, "v1", auth=None) == image.digest
    assert refused.status == "failed"
    error = refused.tasks.get().error
    assert error.startswith(f"the destination does not allow deleting {name}@{image.digest}")
    assert "405" in error and "UNSUPPORTED" in error
