"""Untagged manifests: which may go, and deleting them one by one with a re-check.

A manifest is kept when it is tagged, was pushed within the grace window, is
a child of a kept index, or is a referrer whose subject is kept (referrers go
with their subject).  Everything else in the repository is untagged garbage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from audit.services import Actor, audit_record

from ..models import Manifest, Repository, Tag

Step = Callable[[str], None]
GC_ACTOR = Actor("gc")


@dataclass(frozen=True)
class Doomed:
    """The untagged manifests of one repository that may be deleted."""

    repository: str
    ids: frozenset[int]


def manifests_untagged(*, cutoff: datetime) -> Iterator[Doomed]:
    """Per repository, the manifests that are garbage now (read only)."""
    children = Manifest.children.through.objects
    for repository_id, name in Repository.objects.order_by("id").values_list("id", "name"):
        rows = list(
            Manifest.objects.filter(repository_id=repository_id).values_list(
                "id", "digest", "subject_digest", "created_at"
            )
        )
        if not rows:
            continue
        by_digest = {digest: manifest_id for manifest_id, digest, _, _ in rows}
        referrers: dict[int, list[int]] = defaultdict(list)
        for manifest_id, _, subject, _ in rows:
            if subject in by_digest:
                referrers[by_digest[subject]].append(manifest_id)
        edges: dict[int, list[int]] = defaultdict(list)
        for parent, child in children.filter(
            from_manifest__repository_id=repository_id
        ).values_list("from_manifest_id", "to_manifest_id"):
            edges[parent].append(child)
        roots = set(
            Tag.objects.filter(repository_id=repository_id).values_list("manifest_id", flat=True)
        )
        roots |= {manifest_id for manifest_id, _, _, created in rows if created >= cutoff}
        kept = _closure(roots, edges, referrers)
        doomed = frozenset(manifest_id for manifest_id, _, _, _ in rows) - kept
        if doomed:
            yield Doomed(name, doomed)


def _closure(roots: set[int], *graphs: dict[int, list[int]]) -> set[int]:
    kept, stack = set(roots), list(roots)
    while stack:
        current = stack.pop()
        for graph in graphs:
            for follower in graph.get(current, ()):
                if follower not in kept:
                    kept.add(follower)
                    stack.append(follower)
    return kept


def manifests_delete(*, doomed: Doomed, cutoff: datetime, run_id: int) -> int:
    """Delete the doomed manifests of one repository that are still garbage; return how many.

    Indexes go before their children and subjects before their referrers, so
    each re-check sees the final state: a manifest tagged or pulled into a new
    index meanwhile stays, and so do its children and referrers.
    """
    remaining = set(doomed.ids)
    deleted = 0
    progress = True
    while remaining and progress:
        progress = False
        for manifest_id in sorted(remaining):
            verdict = _delete_if_garbage(manifest_id, remaining, cutoff, doomed.repository, run_id)
            if verdict == "later":
                continue
            remaining.discard(manifest_id)
            progress = True
            deleted += verdict == "deleted"
    return deleted


def _delete_if_garbage(
    manifest_id: int, remaining: set[int], cutoff: datetime, repository: str, run_id: int
) -> str:
    """Delete one manifest if it is still garbage: "deleted", "kept", or "later".

    "later": a doomed parent index or subject of it has to go first.
    """
    with transaction.atomic():
        # The same row lock a manifest put takes on a manifest it stores or refers to.
        manifest = Manifest.objects.select_for_update().filter(id=manifest_id).first()
        if manifest is None:
            return "kept"
        if manifest.created_at >= cutoff or Tag.objects.filter(manifest_id=manifest_id).exists():
            return "kept"
        parents = set(manifest.parents.values_list("id", flat=True))
        if parents - remaining:
            return "kept"
        if parents:
            return "later"
        if manifest.subject_digest:
            subject = (
                Manifest.objects.filter(
                    repository_id=manifest.repository_id, digest=manifest.subject_digest
                )
                .values_list("id", flat=True)
                .first()
            )
            if subject is not None:
                return "later" if subject in remaining else "kept"
        digest = manifest.digest
        manifest.delete()
        audit_record(
            actor=GC_ACTOR,
            action="delete",
            resource=f"{repository}@{digest}",
            detail={"kind": "manifest", "reason": "untagged", "gc_run": run_id},
        )
    return "deleted"
