"""List pages cost a fixed number of queries, however many rows they show."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from distribution.models import Blob, Manifest, Repository, Tag
from projects.models import Project

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def fill(name: str, repositories: int, artifacts: int) -> None:
    """A project with repositories of tagged manifests, each with a blob."""
    project = Project.objects.create(name=name)
    blob, _ = Blob.objects.get_or_create(digest="sha256:" + "b" * 64, defaults={"size": 10})
    for r in range(repositories):
        repository = Repository.objects.create(name=f"{name}/r{r}", project=project)
        for a in range(artifacts):
            manifest = Manifest.objects.create(
                repository=repository,
                digest=f"sha256:{r:032x}{a:032x}",
                media_type=OCI_MANIFEST,
                size=2,
                body=b"{}",
            )
            manifest.blobs.add(blob)
            Tag.objects.create(repository=repository, name=f"t{a}", manifest=manifest)


def queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", ["/projects/", "/projects/{}/", "/repositories/{}/r0/"])
def test_list_pages_do_not_grow_with_their_rows(db, settings, page: str) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    fill("small", 1, 1)
    few = queries(client, page.format("small"))
    fill("big", 5, 8)
    for n in range(10):
        Project.objects.create(name=f"extra{n}")
    many = queries(client, page.format("big"))
    assert many == few, f"{page}: {few} queries for one row, {many} for many"


def replication_rows(prefix: str, size: int) -> dict[str, int]:
    """``size`` endpoints, each used by ``size`` policies, each with ``size`` executions
    (running and ended) of ``size`` tasks; the ids of the first policy and execution."""
    from replication.models import Execution, RegistryEndpoint, ReplicationPolicy, Task

    first: dict[str, int] = {}
    for e in range(size):
        endpoint = RegistryEndpoint.objects.create(name=f"{prefix}-e{e}", url="http://r.test")
        for p in range(size):
            policy = ReplicationPolicy.objects.create(
                name=f"{prefix}-e{e}-p{p}", endpoint=endpoint, direction="push"
            )
            first.setdefault("policy", policy.pk)
            for x in range(size):
                status = "running" if x % 2 else "succeeded"
                execution = Execution.objects.create(policy=policy, status=status, total=size)
                first.setdefault("execution", execution.pk)
                for t in range(size):
                    Task.objects.create(
                        execution=execution, source=f"a:{t}", destination=f"a:{t}", bytes=9
                    )
    return first


@pytest.mark.parametrize(
    "page",
    [
        "/administration/registries/",
        "/administration/replications/",
        "/administration/replications/{policy}/",
        "/administration/replications/executions/",
        "/administration/replications/executions/{execution}/",
    ],
)
def test_replication_lists_do_not_grow_with_their_rows(db, settings, page: str) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    few = queries(client, page.format(**replication_rows("small", 1)))
    many = queries(client, page.format(**replication_rows("big", 4)))
    assert many == few, f"{page}: {few} queries for one row, {many} for many"
