"""Repository rows, blob links and project quotas, shared by the upload and manifest services."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from projects.exceptions import ProjectNotEmpty
from projects.models import Project

from ..exceptions import Denied, NameInvalid, NameUnknown, QuotaExceeded
from ..models import Blob, BlobState, Repository, RepositoryBlob
from ..selectors import project_usage

# Set while a proxy cache stores what it fetched from its upstream: the only writes a
# proxy-cache project takes.  A context variable, so threads and requests never share it.
_filling_cache: ContextVar[bool] = ContextVar("filling_cache", default=False)


@contextmanager
def cache_fill() -> Iterator[None]:
    """Let the writes inside this block go into proxy-cache projects."""
    token = _filling_cache.set(True)
    try:
        yield
    finally:
        _filling_cache.reset(token)


def refuse_proxy_push(project: Project) -> None:
    """Denied if ``project`` is a proxy cache and this is not the cache filling itself."""
    if project.registry_id is not None and not _filling_cache.get():
        raise Denied(
            f"project {project.name!r} is a proxy cache: it is filled from its upstream "
            "registry and takes no pushes",
            detail={"project": project.name},
        )


def project_for_push(name: str) -> Project:
    """The project a push to repository ``name`` goes into; it must exist already."""
    first, separator, _ = name.partition("/")
    if not separator:
        raise NameInvalid(
            "a repository name is <project>/<repository>, e.g. library/app",
            detail={"name": name},
        )
    project = Project.objects.filter(name=first).first()
    if project is None:
        raise NameUnknown(
            f"project {first!r} does not exist; create it before pushing to it",
            detail={"project": first},
        )
    refuse_proxy_push(project)
    return project


def repository_for_push(name: str) -> Repository:
    """The repository a push writes to, created by the first push into its project."""
    repository = Repository.objects.filter(name=name).select_related("project").first()
    if repository is not None:
        refuse_proxy_push(repository.project)
        return repository
    repository, _ = Repository.objects.get_or_create(
        name=name, defaults={"project": project_for_push(name)}
    )
    return repository


def quota_check(*, project: Project, digest: str, size: int) -> None:
    """Raise QuotaExceeded if adding blob ``digest`` would take the project over its quota.

    A blob counts once per project, however many of its repositories hold it.
    """
    if project.quota_bytes is None:
        return
    if RepositoryBlob.objects.filter(repository__project=project, blob__digest=digest).exists():
        return
    used = project_usage(project=project)
    if used + size > project.quota_bytes:
        raise QuotaExceeded(
            f"quota exceeded: project {project.name!r} holds {used} of {project.quota_bytes} "
            f"bytes and this blob needs {size} more",
            detail={
                "project": project.name,
                "quota": project.quota_bytes,
                "used": used,
                "needed": size,
            },
        )


def blob_link(*, repository: Repository, digest: str, size: int) -> Blob | None:
    """Record a stored blob and let ``repository`` see it (idempotent), within its quota.

    Returns None, linking nothing, when garbage collection is deleting the blob.

    Call inside a transaction: the project row is locked while its quota is
    checked, so concurrent pushes cannot both slip under the limit.
    """
    if repository.project.quota_bytes is not None:
        project = Project.objects.select_for_update().get(pk=repository.project_id)
        quota_check(project=project, digest=digest, size=size)
    # INSERT ... ON CONFLICT DO NOTHING: a new blob and link cost three statements
    # instead of get_or_create's eight (savepoints included), and races are harmless.
    Blob.objects.bulk_create([Blob(digest=digest, size=size)], ignore_conflicts=True)
    # The touch stands in for reading the row back: it returns it, and refreshes an old one.
    touched = blobs_touch(digests=[digest])
    if not touched:
        return None
    blob = touched[0]
    RepositoryBlob.objects.bulk_create(
        [RepositoryBlob(repository=repository, blob=blob)], ignore_conflicts=True
    )
    return blob


def blobs_touch(
    *,
    digests: Sequence[str],
    repository: Repository | None = None,
    repository_name: str | None = None,
) -> list[Blob]:
    """Record that a push uses these blobs now; return those it may use (id, digest, size).

    One conditional UPDATE ... RETURNING: ``touched_at`` becomes now and a
    ``marked`` blob is ``active`` again.  A blob garbage collection is
    deleting is left alone and not returned: the caller treats it as missing.
    With ``repository`` or ``repository_name`` only blobs that repository may
    see count.  The rows are locked in id order (as the collector locks them)
    until the caller's transaction ends, which is what orders a push against
    the collector's marked -> deleting transition (docs/gc.md).
    """
    if not digests:
        return []
    blob, link = Blob._meta.db_table, RepositoryBlob._meta.db_table
    marks = ", ".join(["%s"] * len(digests))
    where = f"digest IN ({marks}) AND state IN (%s, %s)"
    params: list[Any] = [*digests, BlobState.ACTIVE, BlobState.MARKED]
    if repository is not None:
        where += (
            f" AND EXISTS (SELECT 1 FROM {link} l WHERE l.blob_id = b.id AND l.repository_id = %s)"
        )
        params.append(repository.pk)
    if repository_name is not None:
        repo = Repository._meta.db_table
        where += (
            f" AND EXISTS (SELECT 1 FROM {link} l JOIN {repo} r ON r.id = l.repository_id"
            " WHERE l.blob_id = b.id AND r.name = %s)"
        )
        params.append(repository_name)
    order = " ORDER BY b.id FOR UPDATE" if connection.vendor == "postgresql" else ""
    sql = (
        f"UPDATE {blob} SET touched_at = %s, state = %s"
        f" WHERE id IN (SELECT b.id FROM {blob} b WHERE {where}{order})"
        " RETURNING id, digest, size"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), BlobState.ACTIVE, *params])
        rows = cursor.fetchall()
    return [Blob.from_db("default", ["id", "digest", "size"], row) for row in rows]


def project_delete(*, project: Project, actor: Actor) -> None:
    """Delete a project that holds no repositories (ProjectNotEmpty otherwise), audited.

    The project row is locked first, so a push that would create its first
    repository waits and then finds the project gone.
    """
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if Repository.objects.filter(project=locked).exists():
            raise ProjectNotEmpty(
                f"project {locked.name!r} still holds repositories; delete them first"
            )
        audit_record(
            actor=actor,
            action="project",
            resource=f"project:{locked.name}",
            detail={"change": "deleted"},
        )
        locked.delete()
