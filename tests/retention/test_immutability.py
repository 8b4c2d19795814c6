"""Immutable tags: refused moves and deletes over /v2/ and the REST API, rules over the API."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from django.db import connection, transaction

from audit.models import AuditEntry
from audit.services import SYSTEM
from distribution.exceptions import TagImmutable
from distribution.immutability import immutable_rule_create
from distribution.models import ImmutableRule, Manifest, Repository, Tag
from projects.models import Project
from tests.api.team import call, errors, team_fixture, team_password_hash_fixture
from tests.distribution.helpers import (
    OCI_MANIFEST,
    assert_error,
    make_config,
    make_image_manifest,
    push_image,
    push_manifest,
    wait_until,
)
from tests.fixtures import authed
from tests.gc.helpers import push_blob, put_manifest

__all__ = ["team_fixture", "team_password_hash_fixture"]  # fixtures this module uses

RULES = "projects/team/immutabletagrules"


def add_rule(registry, tag: str, repository: str = "**", who: str = "max", **extra) -> dict:
    response = call(
        registry,
        "POST",
        RULES,
        who,
        json={"repository_pattern": repository, "tag_pattern": tag, **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


def v2_delete(registry, name: str, reference: str):
    return authed.delete(f"{registry.url}/v2/{name}/manifests/{reference}")


def test_an_immutable_tag_cannot_be_moved_but_can_be_pushed_again(registry, team) -> None:
    first = push_image(registry, "team/app", "v1")
    add_rule(registry, "v*")
    other = push_image(registry, "team/app", "scratch")
    moved = push_manifest(registry, "team/app", "v1", other.body, OCI_MANIFEST)
    error = assert_error(moved, 409, "DENIED")
    assert "immutable" in error["message"]
    assert Tag.objects.get(repository__name="team/app", name="v1").manifest.digest == first.digest
    # The same manifest again is a harmless push, and a new tag matching the rule is fine.
    again = push_manifest(registry, "team/app", "v1", first.body, OCI_MANIFEST)
    assert again.status_code == 201, again.text
    assert push_manifest(registry, "team/app", "v2", first.body, OCI_MANIFEST).status_code == 201
    # A tag no rule matches moves as ever.
    assert push_manifest(registry, "team/app", "scratch", first.body, OCI_MANIFEST).status_code == (
        201
    )


def test_an_immutable_tag_cannot_be_deleted_over_v2_or_the_api(registry, team) -> None:
    image = push_image(registry, "team/app", "v1")
    push_image(registry, "team/app", "dev")
    add_rule(registry, "v1", repository="app")
    assert_error(v2_delete(registry, "team/app", "v1"), 409, "DENIED")
    assert_error(v2_delete(registry, "team/app", image.digest), 409, "DENIED")
    base = f"projects/team/repositories/app/artifacts/{image.digest}"
    tag = call(registry, "DELETE", f"{base}/tags/v1", "max")
    assert tag.status_code == 412 and errors(tag) == ["PRECONDITION_FAILED"]
    assert "immutable" in tag.json()["errors"][0]["message"]
    artifact = call(registry, "DELETE", base, "max")
    assert artifact.status_code == 412, artifact.text
    repository = call(registry, "DELETE", "projects/team/repositories/app", "max")
    assert repository.status_code == 412, repository.text
    assert Manifest.objects.filter(digest=image.digest).exists()
    assert Repository.objects.filter(name="team/app").exists()
    # Tags no rule covers still go.
    assert v2_delete(registry, "team/app", "dev").status_code == 202


def test_a_rule_applies_to_its_repositories_only(registry, team) -> None:
    push_image(registry, "team/app", "v1")
    push_image(registry, "team/tools/lint", "v1")
    add_rule(registry, "v1", repository="tools/**")
    assert v2_delete(registry, "team/app", "v1").status_code == 202
    assert_error(v2_delete(registry, "team/tools/lint", "v1"), 409, "DENIED")


def test_a_disabled_rule_does_not_apply_and_rules_are_managed(registry, team) -> None:
    push_image(registry, "team/app", "v1")
    rule = add_rule(registry, "v1", disabled=True)
    assert rule["disabled"] is True and rule["project_id"] == team.pk
    artifact = "projects/team/repositories/app/artifacts/v1"
    assert call(registry, "GET", artifact).json()["tags"][0]["immutable"] is False
    listed = call(registry, "GET", RULES, "max")
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [rule["id"]]
    assert v2_delete(registry, "team/app", "v1").status_code == 202

    push_image(registry, "team/app", "v1")
    enabled = call(
        registry,
        "PUT",
        f"{RULES}/{rule['id']}",
        "max",
        json={"repository_pattern": "**", "tag_pattern": "v1", "disabled": False},
    )
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert call(registry, "GET", artifact).json()["tags"][0]["immutable"] is True
    assert call(registry, "GET", f"{artifact}/tags").json()[0]["immutable"] is True
    assert_error(v2_delete(registry, "team/app", "v1"), 409, "DENIED")
    assert call(registry, "DELETE", f"{RULES}/{rule['id']}", "max").status_code == 200
    assert not ImmutableRule.objects.exists()
    assert v2_delete(registry, "team/app", "v1").status_code == 202
    changes = AuditEntry.objects.filter(action="immutable_rule").values_list("detail", flat=True)
    assert [c["change"] for c in changes.order_by("id")] == ["created", "updated", "deleted"]


def test_rules_need_a_maintainer_and_readable_patterns(registry, team) -> None:
    denied = call(registry, "POST", RULES, "dev", json={"tag_pattern": "v*"})
    assert denied.status_code == 403
    assert call(registry, "GET", RULES, "anonymous").status_code == 401
    assert call(registry, "GET", RULES, "out").status_code == 404
    bad = call(registry, "POST", RULES, "max", json={"tag_pattern": "{v1,v2"})
    assert bad.status_code == 400 and "unclosed" in bad.json()["errors"][0]["message"]
    assert call(registry, "PUT", f"{RULES}/999", "max", json={"tag_pattern": "x"}).status_code == (
        404
    )


# --- two pushes of a new tag at once (through the services) ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_pushes_creating_an_immutable_tag_cannot_both_win(settings, tmp_path) -> None:
    settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
    project = Project.objects.create(name="race", public=False)
    immutable_rule_create(project=project, repository_pattern="**", tag_pattern="v*", actor=SYSTEM)
    documents = []
    for _ in range(2):  # two different images, their blobs already pushed
        config, layer = make_config(), os.urandom(500)
        for data in (config, layer):
            push_blob("race/app", data)
        documents.append(make_image_manifest(config, [layer]))
    first_pushed, commit_first = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():  # the first push, not yet committed
                outcome["first"] = put_manifest("race/app", "v1", documents[0]).digest
                first_pushed.set()
                commit_first.wait(30)
        finally:
            connection.close()

    def second() -> None:
        try:
            outcome["second"] = put_manifest("race/app", "v1", documents[1]).digest
        except TagImmutable as error:
            outcome["second"] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_pushed.wait(30)
    threads[1].start()
    # The second push found no tag and now waits on the first one's uncommitted row.
    assert wait_until(_a_backend_waits_for_a_lock, timeout=30)
    commit_first.set()
    for thread in threads:
        thread.join(30)

    assert isinstance(outcome["second"], TagImmutable), outcome
    assert (
        Tag.objects.get(repository__name="race/app", name="v1").manifest.digest
        == (outcome["first"])
    )


def _a_backend_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        # Waiting on another transaction's row: a lock on its transaction id, which
        # pg_locks files under no database; pg_stat_activity names the waiter's.
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        (waiting,) = cursor.fetchone()
    return bool(waiting)
