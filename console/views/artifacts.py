"""A repository's artifacts, one artifact's layers, config, referrers and tags."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from distribution.exceptions import RegistryError, TagExists
from distribution.grammar import check_digest, check_tag
from distribution.models import Repository
from distribution.selectors import artifact_get, artifact_list, manifest_get, repository_get
from distribution.services import manifest_delete, tag_create

from ..access import ProjectAccess, actor_of, console_page, project_access, registry_host


def repository_access(
    request: HttpRequest, name: str, ability: str = "read"
) -> tuple[ProjectAccess, Repository]:
    """The repository ``name`` and its project's access, as ``project_access`` decides it."""
    access = project_access(request, name.split("/", 1)[0], ability)
    repository = repository_get(name=name)
    if repository is None or repository.project_id != access.project.pk:
        raise Http404("no such repository")
    return access, repository


@console_page("GET")
def repository_page(request: HttpRequest, name: str) -> HttpResponse:
    access, repository = repository_access(request, name)
    context = {
        "access": access,
        "repository": repository,
        "artifacts": artifact_list(repository=repository),
        "host": registry_host(request),
    }
    return render(request, "console/repository.html", context)


@console_page("GET")
def artifact_page(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    access, repository = repository_access(request, name)
    try:
        artifact = artifact_get(repository=repository, digest=digest)
    except RegistryError:
        raise Http404("no such artifact") from None
    context = {
        "access": access,
        "repository": repository,
        "artifact": artifact,
        "host": registry_host(request),
    }
    return render(request, "console/artifact.html", context)


@console_page("POST")
def artifact_delete(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    """Delete the artifact and the tags on it (as ``DELETE /v2/.../manifests/<digest>``)."""
    repository_access(request, name, "delete_artifact")
    try:
        manifest_delete(repository_name=name, reference=digest, actor=actor_of(request))
    except RegistryError as error:
        messages.error(request, error.message)
        return redirect("console:artifact", name=name, digest=digest)
    messages.success(request, f"{name}@{digest} was deleted.")
    return redirect("console:repository", name=name)


@console_page("POST")
def tag_add(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    """Put a new tag on this artifact."""
    repository_access(request, name, "add_tag")
    tag = request.POST.get("tag", "").strip()
    try:
        check_digest(digest)
        manifest = manifest_get(repository_name=name, reference=digest, accept=[], with_body=False)
        tag_create(manifest=manifest, name=tag, actor=actor_of(request))
    except RegistryError as error:
        messages.error(request, error.message)
    except TagExists:
        messages.error(request, f"The tag {tag} names an artifact already; remove it there first.")
    else:
        messages.success(request, f"{name}:{tag} now names this artifact.")
    return redirect("console:artifact", name=name, digest=digest)


@console_page("POST")
def tag_remove(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    """Remove a tag; the artifact stays."""
    repository_access(request, name, "delete_tag")
    tag = request.POST.get("tag", "")
    try:
        # A tag, never a digest: deleting by digest would delete the artifact itself.
        manifest_delete(repository_name=name, reference=check_tag(tag), actor=actor_of(request))
    except RegistryError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The tag {tag} was removed.")
    return redirect("console:artifact", name=name, digest=digest)
