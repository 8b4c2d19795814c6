"""The registry's signals: sent once a push or delete commits, describing what changed, and
never breaking the write when a receiver fails."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from audit.services import SYSTEM
from distribution import services
from distribution.models import ArtifactLabel, Label, Manifest
from distribution.signals import (
    DeletedArtifact,
    artifact_pushed,
    artifacts_deleted,
    referrer_pushed,
)
from tests.gc.helpers import push_image, push_index, push_referrer

pytestmark = pytest.mark.django_db(transaction=True)
REPO = "sig/app"


@pytest.fixture(autouse=True)
def setup(settings, tmp_path) -> None:
    from projects.models import Project

    settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
    Project.objects.get_or_create(name="sig", defaults={"public": True})


@pytest.fixture
def heard() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every signal sent while the test runs, as (name, kwargs)."""
    log: list[tuple[str, dict[str, Any]]] = []

    def pushed(sender: Any, **kwargs: Any) -> None:
        log.append(("pushed", {k: v for k, v in kwargs.items() if k != "signal"}))

    def deleted(sender: Any, **kwargs: Any) -> None:
        log.append(("deleted", {k: v for k, v in kwargs.items() if k != "signal"}))

    artifact_pushed.connect(pushed, dispatch_uid="test-pushed")
    artifacts_deleted.connect(deleted, dispatch_uid="test-deleted")
    try:
        yield log
    finally:
        artifact_pushed.disconnect(dispatch_uid="test-pushed")
        artifacts_deleted.disconnect(dispatch_uid="test-deleted")


def test_a_push_is_announced_when_a_tag_names_another_artifact(heard) -> None:
    first = push_image(REPO, "v1")
    assert heard == [("pushed", {"repository_name": REPO, "tag": "v1", "digest": first.digest})]
    heard.clear()
    services.manifest_put(  # the same manifest under the same tag: nothing new
        repository_name=REPO, reference="v1", content_type=first.media_type, body=first.body
    )
    push_image(REPO, "@")  # by digest: no tag
    assert heard == []
    second = push_image(REPO, "v2")
    services.manifest_put(  # the tag moved
        repository_name=REPO, reference="v1", content_type=second.media_type, body=second.body
    )
    assert [kwargs["tag"] for _, kwargs in heard] == ["v2", "v1"]
    assert heard[-1][1]["digest"] == second.digest
    heard.clear()
    services.manifest_put(  # replication's own write
        repository_name=REPO,
        reference="v3",
        content_type=first.media_type,
        body=first.body,
        replicated=True,
    )
    assert heard == []


def test_a_referrer_pushed_by_digest_is_announced_once() -> None:
    heard: list[dict[str, Any]] = []

    def referred(sender: Any, **kwargs: Any) -> None:
        heard.append({k: v for k, v in kwargs.items() if k != "signal"})

    subject = push_image(REPO, "v1")
    referrer_pushed.connect(referred, dispatch_uid="test-referrer")
    try:
        signature = push_referrer(REPO, subject)
        services.manifest_put(  # the same bytes again: nothing new
            repository_name=REPO,
            reference=signature.digest,
            content_type=signature.media_type,
            body=signature.body,
        )
        push_image(REPO, "@")  # by digest, without a subject: not a referrer
    finally:
        referrer_pushed.disconnect(dispatch_uid="test-referrer")
    assert heard == [
        {"repository_name": REPO, "digest": signature.digest, "subject_digest": subject.digest}
    ]


def test_deletes_are_announced_with_tags_and_labels(heard) -> None:
    image = push_image(REPO, "v1")
    manifest = Manifest.objects.get(digest=image.digest)
    services.tag_create(manifest=manifest, name="v2", actor=SYSTEM)
    label = Label.objects.create(name="approved", scope=Label.GLOBAL)
    ArtifactLabel.objects.create(manifest=manifest, label=label)
    heard.clear()

    services.manifest_delete(repository_name=REPO, reference="v2")
    services.manifest_delete(repository_name=REPO, reference=image.digest)

    assert heard == [
        (
            "deleted",
            {
                "repository_name": REPO,
                "artifacts": [DeletedArtifact(image.digest, ("v2",), False, ("approved",))],
            },
        ),
        (
            "deleted",
            {
                "repository_name": REPO,
                "artifacts": [DeletedArtifact(image.digest, ("v1",), True, ("approved",))],
            },
        ),
    ]


def test_an_index_goes_alone_in_the_announcement(heard) -> None:
    children = [push_image(REPO, "@"), push_image(REPO, "@")]
    index = push_index(REPO, "multi", children)
    push_referrer(REPO, index)
    heard.clear()

    services.artifact_delete(manifest=Manifest.objects.get(digest=index.digest), actor=SYSTEM)

    [(_, kwargs)] = heard
    assert kwargs["artifacts"] == [DeletedArtifact(index.digest, ("multi",), True, ())]


def test_nothing_is_announced_for_a_write_that_rolled_back(heard) -> None:
    image = push_image(REPO, "v1")
    heard.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.manifest_delete(repository_name=REPO, reference=image.digest)
        raise RuntimeError("rolled back")
    assert heard == []
    assert Manifest.objects.filter(digest=image.digest).exists()


def test_a_failing_receiver_is_logged_and_the_write_stands(caplog) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver trouble")

    artifact_pushed.connect(broken, dispatch_uid="test-broken")
    try:
        with caplog.at_level(logging.ERROR, logger="distribution.signals"):
            image = push_image(REPO, "v1")
    finally:
        artifact_pushed.disconnect(dispatch_uid="test-broken")
    assert Manifest.objects.filter(digest=image.digest, tags__name="v1").exists()
    assert "a receiver of a registry signal failed" in caplog.text
    assert "receiver trouble" in caplog.text
