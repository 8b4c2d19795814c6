"""Mark and sweep through the services, on the filesystem store and on S3 (moto)."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from distribution import selectors, services
from distribution.exceptions import BlobUnknown, ManifestBlobUnknown
from distribution.gc import GCLocked, gc_lock, gc_run
from distribution.models import (
    Blob,
    BlobState,
    GCRun,
    GCStatus,
    Manifest,
    RepositoryBlob,
    Tag,
    Upload,
)
from distribution.storage import BlobStore
from projects.sizes import size_format as format_size
from tests.distribution.helpers import EMPTY_JSON, make_config, make_image_manifest

from .helpers import (
    GRACE,
    age_everything,
    blob_bytes,
    digest_of,
    gone,
    intact,
    lock_held_elsewhere,
    push_blob,
    push_image,
    push_index,
    push_referrer,
    put_manifest,
)

pytestmark = pytest.mark.django_db


def test_unreferenced_blobs_past_the_grace_window_are_deleted(project, store: BlobStore) -> None:
    image = push_image("gct/keep", "v1")
    old = push_blob("gct/keep", os.urandom(2000))
    age_everything()
    recent = push_blob("gct/keep", os.urandom(500))

    run = gc_run(grace=GRACE)

    assert run.status == GCStatus.SUCCEEDED, run.log
    assert gone(old)
    assert not RepositoryBlob.objects.filter(blob__digest=old).exists()
    assert all(intact(d) for d in [*image.blobs, recent])
    assert (run.blobs_deleted, run.bytes_freed) == (1, 2000)
    assert run.started_at is not None and run.finished_at is not None
    assert "freed 2 KiB: 1 blobs, 0 manifests, 0 uploads" in run.log
    assert not Blob.objects.exclude(state=BlobState.ACTIVE).exists(), "nothing stays marked"
    assert sorted(store.blob_digests()) == sorted({*image.blobs, recent})


def test_a_blob_goes_once_no_manifest_refers_to_it(project, fs_store) -> None:
    repo = "gct/shared"
    shared, own, config1, config2 = os.urandom(64), os.urandom(32), make_config(), make_config()
    for data in (shared, own, config1, config2):
        push_blob(repo, data)
    first = put_manifest(repo, "one", make_image_manifest(config1, [shared, own]))
    put_manifest(repo, "two", make_image_manifest(config2, [shared]))
    services.manifest_delete(repository_name=repo, reference=first.digest)
    age_everything()

    run = gc_run(grace=GRACE)

    assert gone(digest_of(config1)) and gone(digest_of(own))
    assert intact(digest_of(config2)) and intact(digest_of(shared)), "still referred to"
    assert run.blobs_deleted == 2


TOUCHES = ["head", "mount", "upload", "manifest"]


@pytest.mark.parametrize("touch", TOUCHES)
def test_a_blob_a_push_touches_after_marking_survives(project, fs_store, touch: str) -> None:
    data = os.urandom(700)
    digest = push_blob("gct/touch", data)
    config = make_config()
    push_blob("gct/touch", config)
    age_everything()

    def use_it() -> None:
        if touch == "head":
            services.blob_head(repository_name="gct/touch", digest=digest)
        elif touch == "mount":
            blob = services.blob_mount(
                repository_name="gct/other", digest=digest, from_name="gct/touch"
            )
            assert blob is not None
        elif touch == "upload":
            push_blob("gct/touch", data)
        else:
            put_manifest("gct/touch", "v1", make_image_manifest(config, [data]))

    used: list[str] = []

    def progress(line: str) -> None:
        # Between mark and sweep: the moment a push meets a marked blob.
        if line.startswith("mark:") and not used:
            used.append(line)
            assert Blob.objects.get(digest=digest).state == BlobState.MARKED
            use_it()

    run = gc_run(grace=0, progress=progress)

    assert run.status == GCStatus.SUCCEEDED, run.log
    assert intact(digest)
    assert Blob.objects.get(digest=digest).state == BlobState.ACTIVE
    if touch != "manifest":
        assert gone(digest_of(config)), "untouched garbage of the same run still goes"


def test_pushes_treat_a_deleting_blob_as_missing(project, fs_store) -> None:
    data, config = os.urandom(900), make_config()
    digest = push_blob("gct/dying", data)
    push_blob("gct/dying", config)
    # What a collector that died between its transition and its deletion leaves behind.
    Blob.objects.filter(digest=digest).update(state=BlobState.DELETING)

    with pytest.raises(BlobUnknown):
        services.blob_head(repository_name="gct/dying", digest=digest)
    with pytest.raises(BlobUnknown):
        selectors.blob_get(repository_name="gct/dying", digest=digest)
    assert (
        services.blob_mount(repository_name="gct/x", digest=digest, from_name="gct/dying") is None
    )
    with pytest.raises(ManifestBlobUnknown) as refused:
        put_manifest("gct/dying", "v1", make_image_manifest(config, [data]))
    assert refused.value.detail == {"digests": [digest]}

    # Uploading it again finishes the old deletion (no collector runs) and stores it anew.
    push_blob("gct/dying", data)

    blob = Blob.objects.get(digest=digest)
    assert blob.state == BlobState.ACTIVE
    assert blob_bytes(digest) == data
    assert selectors.blob_get(repository_name="gct/dying", digest=digest).size == 900


def test_the_next_run_finishes_what_a_dead_collector_left(project, fs_store) -> None:
    digest = push_blob("gct/left", os.urandom(300))
    Blob.objects.filter(digest=digest).update(state=BlobState.DELETING)

    run = gc_run(grace=GRACE)

    assert gone(digest)
    assert run.blobs_deleted == 1


@pytest.mark.django_db(transaction=True)
def test_an_upload_waits_while_a_collector_deletes_its_old_copy(project, fs_store) -> None:
    data = os.urandom(400)
    digest = push_blob("gct/wait", data)
    Blob.objects.filter(digest=digest).update(state=BlobState.DELETING)
    held, release, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def collector() -> None:  # holds the lock like a collector that is busy deleting
        try:
            with gc_lock():
                held.set()
                release.wait(30)
        finally:
            connection.close()

    def uploader() -> None:
        try:
            push_blob("gct/wait", data)
        except BaseException as error:
            errors.append(error)
        finally:
            done.set()
            connection.close()

    threads = [threading.Thread(target=collector), threading.Thread(target=uploader)]
    threads[0].start()
    assert held.wait(10)
    threads[1].start()
    assert not done.wait(1.0), "the upload must wait while the collector holds the lock"
    release.set()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert Blob.objects.get(digest=digest).state == BlobState.ACTIVE
    assert blob_bytes(digest) == data


def test_untagged_manifests_go_but_index_children_and_referrers_of_kept_subjects_stay(
    project, store: BlobStore
) -> None:
    repo = "gct/untagged"
    tagged = push_image(repo, "v1")
    signature = push_referrer(repo, tagged)  # untagged, but its subject is kept
    loose = push_image(repo, "@")  # untagged
    loose_signature = push_referrer(repo, loose)  # goes with its subject
    children = [push_image(repo, "@"), push_image(repo, "@")]
    index = push_index(repo, "multi", children)  # tagged index: its untagged children stay
    orphan_children = [push_image(repo, "@"), push_image(repo, "@")]
    orphan_index = push_index(repo, "@", orphan_children)  # untagged index: all of it goes
    age_everything()
    recent = push_image(repo, "@")  # untagged, but within the grace window

    plain = gc_run(grace=GRACE)
    assert plain.manifests_deleted == 0 and Manifest.objects.count() == 11

    run = gc_run(grace=GRACE, untagged=True)

    assert run.status == GCStatus.SUCCEEDED, run.log
    deleted = [loose, loose_signature, orphan_index, *orphan_children]
    kept = [tagged, signature, index, *children, recent]
    remaining = set(Manifest.objects.values_list("digest", flat=True))
    assert remaining == {m.digest for m in kept}
    assert run.manifests_deleted == len(deleted)
    doomed_blobs = {d for m in [loose, *orphan_children] for d in m.blobs}
    doomed_blobs.add(loose_signature.blobs[1])  # its config, {}, is the kept signature's too
    assert all(gone(d) for d in doomed_blobs)
    assert all(intact(d) for m in [tagged, signature, *children, recent] for d in m.blobs)
    assert intact(digest_of(EMPTY_JSON))
    assert run.blobs_deleted == len(doomed_blobs)
    audited = set(
        AuditEntry.objects.filter(actor="gc", action="delete").values_list("resource", flat=True)
    )
    assert audited == {f"{repo}@{m.digest}" for m in deleted}


def test_abandoned_uploads_and_orphaned_upload_data_are_removed(
    project, settings, store: BlobStore
) -> None:
    def upload_with(data: bytes) -> Upload:
        upload = services.upload_start(repository_name="gct/up")
        return services.upload_append(upload=upload, chunks=[data])

    abandoned, busy, fresh = upload_with(b"a" * 100), upload_with(b"b" * 10), upload_with(b"c")
    long_ago = timezone.now() - timedelta(seconds=settings.HARBORPY_UPLOAD_EXPIRY + 60)
    Upload.objects.filter(pk__in=[abandoned.id, busy.id]).update(updated_at=long_ago)
    # A writer is streaming into this one right now.
    Upload.objects.filter(pk=busy.id).update(busy_since=timezone.now(), claim="x")
    orphan = str(uuid.uuid4())
    store.upload_write(orphan, 0, [b"nobody's"])

    first = gc_run(grace=GRACE)

    assert first.uploads_deleted == 1 and first.bytes_freed == 100
    assert set(Upload.objects.values_list("id", flat=True)) == {busy.id, fresh.id}
    assert set(store.upload_ids()) == {busy.id, fresh.id, orphan}, "the orphan is recent"

    second = gc_run(grace=0)

    assert second.uploads_deleted == 1
    assert set(store.upload_ids()) == {busy.id, fresh.id}


def _rows(queryset) -> list[tuple]:
    plain = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in queryset]
    return sorted(plain, key=repr)


def _snapshot(store: BlobStore) -> dict[str, object]:
    """Every row a collection could change, and the store's listings."""
    models = (Blob, RepositoryBlob, Manifest, Tag, Upload, AuditEntry)
    tables: dict[str, object] = {m.__name__: _rows(m.objects.values_list()) for m in models}
    for through in (Manifest.blobs.through, Manifest.children.through):
        tables[through.__name__] = _rows(through.objects.values_list())
    tables["store blobs"] = sorted(store.blob_digests())
    tables["store uploads"] = sorted(store.upload_ids())
    return tables


def test_a_dry_run_changes_nothing_and_predicts_the_real_run(
    project, settings, store: BlobStore
) -> None:
    repo = "gct/dry"
    push_image(repo, "v1")
    loose = push_image(repo, "@")
    push_referrer(repo, loose)
    push_blob(repo, os.urandom(3000))
    upload = services.upload_start(repository_name=repo)
    services.upload_append(upload=upload, chunks=[b"x" * 50])
    age_everything()
    long_ago = timezone.now() - timedelta(seconds=settings.HARBORPY_UPLOAD_EXPIRY + 60)
    Upload.objects.update(updated_at=long_ago)
    store.upload_write(str(uuid.uuid4()), 0, [b"orphan"])
    before = _snapshot(store)

    dry = gc_run(grace=0, untagged=True, dry_run=True)

    assert dry.status == GCStatus.SUCCEEDED, dry.log
    assert _snapshot(store) == before
    assert dry.log.splitlines()[-1].startswith("would free ")
    real = gc_run(grace=0, untagged=True)
    predicted = (dry.blobs_deleted, dry.bytes_freed, dry.manifests_deleted, dry.uploads_deleted)
    done = (real.blobs_deleted, real.bytes_freed, real.manifests_deleted, real.uploads_deleted)
    assert predicted == done
    assert done[0] == 6 and done[2] == 2 and done[3] == 2  # loose + signature; upload + orphan


def test_a_failure_midway_leaves_the_rest_intact_and_the_run_failed(
    project, store: BlobStore, tmp_path
) -> None:
    from distribution.storage.s3 import S3Store

    digests = [push_blob("gct/fail", os.urandom(100 + i)) for i in range(6)]
    age_everything()
    on_s3 = isinstance(store, S3Store)
    if on_s3:
        calls: list[int] = []

        def refuse(**_kwargs) -> None:
            calls.append(1)
            if len(calls) == 2:
                raise ConnectionResetError("the object store went away")

        store.client.meta.events.register("before-call.s3.DeleteObjects", refuse, "gc-fail")
    else:
        # A blob whose file cannot be unlinked (something else sits at its path).
        path = store.root / "blobs" / "sha256" / digests[3][7:9] / digests[3][7:]
        path.unlink()
        (path / "in-the-way").mkdir(parents=True)

    try:
        run = gc_run(grace=GRACE, batch_size=2)
    finally:
        if on_s3:
            store.client.meta.events.unregister("before-call.s3.DeleteObjects", unique_id="gc-fail")

    assert run.status == GCStatus.FAILED
    assert "failed:" in run.log and run.log.splitlines()[-1].startswith("failed after freeing")
    assert gone(digests[0]) and gone(digests[1])
    if on_s3:  # the whole second batch was refused
        assert run.blobs_deleted == 2
        survivors = digests[2:]
    else:  # the first blob of the second batch went before the failure
        assert run.blobs_deleted == 3 and gone(digests[2])
        assert Blob.objects.get(digest=digests[3]).state == BlobState.ACTIVE
        survivors = digests[4:]
    for digest in survivors:
        assert intact(digest)
        assert selectors.blob_get(repository_name="gct/fail", digest=digest)
    assert not Blob.objects.exclude(state=BlobState.ACTIVE).exists()

    if not on_s3:
        (path / "in-the-way").rmdir()
        path.rmdir()
    again = gc_run(grace=GRACE)
    assert again.status == GCStatus.SUCCEEDED, again.log
    assert all(gone(d) for d in digests)


@pytest.mark.django_db(transaction=True)
def test_only_one_collection_runs_at_a_time(project, fs_store) -> None:
    from distribution.gc import gc_run_create, gc_run_execute

    with lock_held_elsewhere():
        with pytest.raises(GCLocked):
            gc_run(grace=0)
        # A worker's run waits for the lock, then stays pending for the checks to send again.
        pending = gc_run_create(grace=0)
        waited = gc_run_execute(run_id=pending.pk, wait=1)
        assert waited is not None and waited.status == GCStatus.PENDING
        assert "waiting: another garbage collection holds the lock" in waited.log
        # A duplicate delivery of a run the lock's holder carries out leaves it to it.
        GCRun.objects.filter(pk=pending.pk).update(status=GCStatus.RUNNING)
        duplicate = gc_run_execute(run_id=pending.pk, wait=30)
        assert duplicate is not None and duplicate.status == GCStatus.RUNNING
        GCRun.objects.filter(pk=pending.pk).update(status=GCStatus.PENDING)
    assert gc_run(grace=0).status == GCStatus.SUCCEEDED
    done = gc_run_execute(run_id=pending.pk)
    assert done is not None and done.status == GCStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_run_takes_the_lock_once_a_push_lets_it_go(project, fs_store) -> None:
    from distribution.gc import gc_run_create, gc_run_execute

    run = gc_run_create(grace=0)
    with lock_held_elsewhere(hold_for=1):  # a push finishing a blob's deletion, say
        done = gc_run_execute(run_id=run.pk, wait=30)
    assert done is not None and done.status == GCStatus.SUCCEEDED, done.log
    assert "waiting" not in done.log


def test_sizes_read_as_people_read_them() -> None:
    assert format_size(0) == "0 B"
    assert format_size(1023) == "1023 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(123 << 20) == "123 MiB"
