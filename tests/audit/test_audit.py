"""The tamper-evident audit log: what is recorded, the hash chain, `harborpy audit verify`."""

from __future__ import annotations

import threading
import time

import pytest

from audit.models import AuditEntry, AuditHead
from audit.selectors import audit_verify
from audit.services import Actor, audit_record
from distribution.models import Manifest
from tests.distribution.helpers import (
    OCI_MANIFEST,
    encode,
    make_image_manifest,
    push_blob,
    push_image,
    wait_until,
)
from tests.fixtures import authed
from tests.fixtures.server import harborpy_command

NAME = "lib/audited"


@pytest.fixture
def registry(registry):
    """The live server, with an audit log that starts empty in this test.

    The server appends pulls about once a second, so a pull at the end of the
    previous test may land after the database was emptied; wait for it, then
    start the chain afresh.
    """
    time.sleep(1.5)
    AuditEntry.objects.all().delete()
    AuditHead.objects.all().delete()
    return registry


def entries(action: str | None = None) -> list[AuditEntry]:
    found = AuditEntry.objects.order_by("id")
    return list(found.filter(action=action) if action else found)


def test_pushes_pulls_and_deletes_are_recorded(registry):
    pushed = push_image(registry, NAME, "v1")
    [push] = entries("push")
    assert (push.actor, push.source, push.resource) == ("admin", "127.0.0.1", f"{NAME}:v1")
    assert push.detail == {"digest": pushed.digest, "media_type": OCI_MANIFEST}

    assert authed.get(f"{registry.url}/v2/{NAME}/manifests/v1").status_code == 200
    assert wait_until(lambda: len(entries("pull")) == 1), "the pull was not recorded"
    [pull] = entries("pull")
    assert (pull.resource, pull.detail) == (f"{NAME}:v1", {"digest": pushed.digest})

    assert authed.delete(f"{registry.url}/v2/{NAME}/manifests/v1").status_code == 202
    assert authed.delete(f"{registry.url}/v2/{NAME}/manifests/{pushed.digest}").status_code == 202
    layer = push_blob(registry, NAME, b"a layer to delete")
    assert authed.delete(f"{registry.url}/v2/{NAME}/blobs/{layer}").status_code == 202
    deletes = [(e.resource, e.detail["kind"]) for e in entries("delete")]
    assert deletes == [
        (f"{NAME}:v1", "tag"),
        (f"{NAME}@{pushed.digest}", "manifest"),
        (f"{NAME}@{layer}", "blob"),
    ]
    assert audit_verify().intact


def test_a_refused_push_records_nothing(registry):
    body = encode(make_image_manifest(config=b"{}", layers=[b"never uploaded"]))
    response = authed.put(
        f"{registry.url}/v2/{NAME}/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 400
    # The server may log the admin's Basic login (verified once per process and minute).
    assert not Manifest.objects.exists()
    assert [e.action for e in entries() if e.action != "login"] == []


def test_tampering_is_found_at_the_first_broken_link(registry):
    for tag in ("a", "b", "c", "d"):
        push_image(registry, NAME, tag)
    _, second, third, fourth = entries("push")
    # The servers may also have logged the admin's Basic logins (once per process and minute).
    assert audit_verify().intact and audit_verify().entries == AuditEntry.objects.count()

    AuditEntry.objects.filter(pk=second.pk).update(actor="someone else")
    check = audit_verify()
    before_second = AuditEntry.objects.filter(pk__lt=second.pk).count()
    assert (check.broken_at.pk, check.entries) == (second.pk, before_second)
    assert "changed" in check.reason
    AuditEntry.objects.filter(pk=second.pk).update(actor=second.actor)
    assert audit_verify().intact

    AuditEntry.objects.filter(pk=third.pk).delete()
    # The first entry after the gap: the fourth push, or a login logged between the two.
    after_gap = AuditEntry.objects.filter(pk__gt=third.pk).order_by("pk").first()
    assert after_gap is not None and after_gap.pk <= fourth.pk
    check = audit_verify()
    assert check.broken_at.pk == after_gap.pk and "removed" in check.reason
    out = _verify_command(registry)
    assert out.returncode == 1
    intact = AuditEntry.objects.filter(pk__lt=after_gap.pk).count()
    assert f"entry #{after_gap.pk}" in out.stderr
    assert f"{intact} entries before it are intact" in out.stderr


def test_removing_the_newest_entries_is_found(registry):
    for tag in ("a", "b"):
        push_image(registry, NAME, tag)
    # The newest entry: the last push, or a login the server logged after it.
    newest = AuditEntry.objects.order_by("-pk").first()
    assert newest is not None
    newest.delete()
    check = audit_verify()
    assert not check.intact and "newest entries were removed" in check.reason


def test_concurrent_appends_keep_one_chain(transactional_db):
    def append(worker: int) -> None:
        for i in range(25):
            audit_record(actor=Actor(f"w{worker}", "10.0.0.1"), action="push", resource=f"x:{i}")

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = audit_verify()
    assert check.intact and check.entries == 200


def test_the_audit_command(registry):
    push_image(registry, NAME, "v1")
    entries_now = AuditEntry.objects.count()  # the push, and the admin's login if it was checked
    out = _verify_command(registry)
    assert out.returncode == 0 and f"audit log intact: {entries_now} entries" in out.stdout
    assert f"admin push {NAME}:v1" in harborpy_command(registry, "audit", "tail", "-n", "5")


def _verify_command(registry):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "harborpy.cli", "audit", "verify"],
        env=registry.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
