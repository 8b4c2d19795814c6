"""Manifest and tag writes."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import SYSTEM, Actor, audit_record

from ..configs import config_attrs
from ..exceptions import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestReferenced,
    ManifestTooLarge,
    ManifestUnknown,
)
from ..grammar import check_digest, check_tag, is_digest, reference_name
from ..immutability import immutable_check
from ..manifests import ParsedManifest, parse_manifest
from ..models import Blob, Manifest, Repository, Tag
from ..signals import deleted_artifacts, send_deleted, send_pushed, send_referrer_pushed
from .repositories import blobs_touch, repository_for_push


def manifest_put(
    *,
    repository_name: str,
    reference: str,
    content_type: str | None,
    body: bytes,
    actor: Actor = SYSTEM,
    absent_ok: bool = False,
    replicated: bool = False,
) -> Manifest:
    """Store a manifest under its digest, and under ``reference`` when that is a tag.

    Everything it refers to (config, layers, child manifests) must already be in
    the repository; nothing is stored otherwise.  With ``absent_ok`` (a proxy
    cache storing a manifest whose blobs and child manifests it fetches later)
    they may be missing: the manifest refers to those present, and
    ``manifest.absent`` (blobs) and ``manifest.missing_children`` list the
    others.  Pushing the same manifest again is harmless; pushing a tag again
    moves it, unless the tag is immutable (TagImmutable; the same manifest to an
    immutable tag is still accepted).  A tag that now names another artifact
    sends ``artifact_pushed`` after the commit, and a new manifest with a subject
    pushed by digest (a referrer: no tag announces it) ``referrer_pushed``, unless
    ``replicated`` (replication's and the proxy cache's own writes: no loops).
    """
    if len(body) > settings.HARBORPY_MANIFEST_MAX_BYTES:
        raise ManifestTooLarge(
            f"manifest is larger than {settings.HARBORPY_MANIFEST_MAX_BYTES} bytes",
            detail={"size": len(body)},
        )
    parsed = parse_manifest(body, content_type)
    tag = None
    if is_digest(reference):
        _check_reference_digest(reference, body)
        parsed.digest = reference  # pushed by a sha512 digest, pulled by it
    else:
        tag = check_tag(reference)
    with transaction.atomic():
        repository = repository_for_push(repository_name)
        previous = None if tag is None else _check_tag_move(repository, tag, parsed.digest)
        blobs, absent = _referenced_blobs(repository, parsed, absent_ok=absent_ok)
        children, absent_children = _referenced_children(repository, parsed, absent_ok=absent_ok)
        # Locked: garbage collection deletes an untagged manifest only under this lock too.
        manifest, created = Manifest.objects.select_for_update().get_or_create(
            repository=repository,
            digest=parsed.digest,
            defaults={
                "media_type": parsed.media_type,
                "artifact_type": parsed.artifact_type,
                "size": len(body),
                "body": body,
                "subject_digest": parsed.subject.digest if parsed.subject else "",
                "annotations": parsed.annotations,
            },
        )
        now = timezone.now()
        if created:
            manifest.blobs.set(blobs)
            manifest.children.set(children)
            _describe(manifest, parsed)
        else:  # the same bytes pushed again: a push all the same
            Manifest.objects.filter(pk=manifest.pk).update(pushed_at=now)
        if tag is not None:
            previous = _tag_write(repository, tag, manifest, now, previous)
            if previous != manifest.digest and not replicated:
                send_pushed(repository_name=repository_name, tag=tag, digest=manifest.digest)
        elif created and parsed.subject is not None and not replicated:
            send_referrer_pushed(
                repository_name=repository_name,
                digest=manifest.digest,
                subject_digest=parsed.subject.digest,
            )
        audit_record(
            actor=actor,
            action="push",
            resource=reference_name(repository_name, reference),
            detail={"digest": manifest.digest, "media_type": manifest.media_type},
        )
    manifest.parsed = parsed  # type: ignore[attr-defined]
    manifest.absent = absent  # type: ignore[attr-defined]
    manifest.missing_children = absent_children  # type: ignore[attr-defined]
    return manifest


def manifest_delete(*, repository_name: str, reference: str, actor: Actor = SYSTEM) -> None:
    """Delete a tag, or a manifest (with the tags on it) by digest."""
    resource = reference_name(repository_name, reference)
    if not is_digest(reference):
        with transaction.atomic():
            tag = (
                Tag.objects.select_for_update()
                .select_related("repository")
                .filter(repository__name=repository_name, name=check_tag(reference))
                .first()
            )
            if tag is None:
                raise ManifestUnknown("manifest unknown", detail={"tag": reference})
            immutable_check(repository=tag.repository, names=[tag.name], doing="delete the tag")
            send_deleted(repository_name=repository_name, artifacts=deleted_artifacts(tags=[tag]))
            tag.delete()
            audit_record(actor=actor, action="delete", resource=resource, detail={"kind": "tag"})
        return
    check_digest(reference)
    with transaction.atomic():
        manifest = (
            Manifest.objects.select_for_update()
            .filter(repository__name=repository_name, digest=reference)
            .first()
        )
        if manifest is None:
            raise ManifestUnknown("manifest unknown", detail={"digest": reference})
        parent = manifest.parents.values_list("digest", flat=True).first()
        if parent is not None:
            raise ManifestReferenced(
                f"manifest is part of index {parent}; delete the index first",
                detail={"digest": reference, "index": parent},
            )
        immutable_check(
            repository=manifest.repository,
            names=manifest.tags.values_list("name", flat=True),
            doing="delete the manifest with its tags",
        )
        deleted = deleted_artifacts(manifests=[manifest])
        manifest.delete()
        send_deleted(repository_name=repository_name, artifacts=deleted)
        audit_record(actor=actor, action="delete", resource=resource, detail={"kind": "manifest"})


def _check_tag_move(repository: Repository, tag: str, digest: str) -> str | None:
    """TagImmutable if the push would move an immutable tag to another manifest; else the
    digest the tag names now (None for a new tag).

    The tag row is locked (only it: its manifest is locked later, in the order retention
    takes them), so a concurrent push cannot move it between check and write.
    """
    current = (
        Tag.objects.select_for_update(of=("self",))
        .filter(repository=repository, name=tag)
        .values_list("manifest__digest", flat=True)
        .first()
    )
    if current is not None and current != digest:
        immutable_check(repository=repository, names=[tag], doing="overwrite the tag")
    return current


def _tag_write(
    repository: Repository, tag: str, manifest: Manifest, now: datetime, previous: str | None
) -> str | None:
    """Point ``tag`` at ``manifest``; return the digest it named before (None: new).

    A tag that was not there may be created by a concurrent push meanwhile: then it is
    checked as an existing one (an immutable tag stays where that push put it).  A tag
    moved to other bytes forgets when it was pulled: those bytes were not.
    """
    if previous is None:
        try:
            with transaction.atomic():
                Tag.objects.create(
                    repository=repository, name=tag, manifest=manifest, pushed_at=now
                )
            return None
        except IntegrityError:
            previous = _check_tag_move(repository, tag, manifest.digest)
    moved = {} if previous == manifest.digest else {"pulled_at": None}
    Tag.objects.filter(repository=repository, name=tag).update(
        manifest=manifest, pushed_at=now, updated_at=now, **moved
    )
    return previous


def _describe(manifest: Manifest, parsed: ParsedManifest) -> None:
    """Keep what the image's config says (architecture, os, created) for the REST API."""
    if not parsed.blobs:
        return
    config = parsed.blobs[0]
    attrs = config_attrs(media_type=config.media_type, digest=config.digest, size=config.size)
    if attrs is not None:
        manifest.extra_attrs = attrs
        manifest.save(update_fields=["extra_attrs"])


def _check_reference_digest(reference: str, body: bytes) -> None:
    check_digest(reference)
    algorithm, expected = reference.split(":", 1)
    if hashlib.new(algorithm, body).hexdigest() != expected:
        raise DigestInvalid(
            "manifest digest does not match the digest in the URL", detail={"digest": reference}
        )


def _referenced_blobs(
    repository: Repository, parsed: ParsedManifest, *, absent_ok: bool = False
) -> tuple[list[Blob], list[str]]:
    # Foreign layers (with urls) live elsewhere by design; everything else must be here.
    wanted = {d.digest: d for d in parsed.blobs if not d.urls}
    # Touching them is reading them: a blob garbage collection is deleting counts as missing.
    found = {b.digest: b for b in blobs_touch(digests=sorted(wanted), repository=repository)}
    missing = sorted(set(wanted) - set(found))
    if missing and not absent_ok:
        raise ManifestBlobUnknown(
            "manifest refers to blobs unknown to this repository", detail={"digests": missing}
        )
    for digest, descriptor in wanted.items():
        if digest in found and found[digest].size != descriptor.size:
            raise ManifestInvalid(
                f"descriptor of {digest} gives size {descriptor.size}, "
                f"the blob has {found[digest].size} bytes",
                detail={"digest": digest},
            )
    return list(found.values()), missing


def _referenced_children(
    repository: Repository, parsed: ParsedManifest, *, absent_ok: bool = False
) -> tuple[list[Manifest], list[str]]:
    wanted = {d.digest for d in parsed.manifests}
    if not wanted:
        return [], []
    # Locked until the index is stored, so garbage collection cannot delete a child meanwhile.
    found = list(
        Manifest.objects.select_for_update().filter(repository=repository, digest__in=wanted)
    )
    missing = sorted(wanted - {m.digest for m in found})
    if missing and not absent_ok:
        raise ManifestUnknown(
            "index refers to manifests unknown to this repository",
            detail={"digests": missing},
            status=400,
        )
    return found, missing
