"""Repositories, artifacts and tags of a project, in Harbor's shapes.

``/api/v2.0/projects/{p}/repositories[/{repo}[/artifacts[/{reference}[/tags|/labels]]]]``.
A repository is named without its project's prefix; a nested name comes
URL-encoded twice as Harbor's clients send it (``a%252Fb``), or as a plain path.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.artifacts import (
    artifact_get,
    artifacts_describe,
    artifacts_filter,
    artifacts_of,
    repositories_of,
    repository_get,
)
from distribution.exceptions import LabelUnknown
from distribution.immutability import immutable_tags
from distribution.models import Label, Manifest, Repository, Tag
from distribution.services import (
    artifact_delete,
    artifact_label_add,
    artifact_label_remove,
    repository_delete,
    tag_create,
    tag_delete,
)
from rbac.roles import Act, Res

from ..base import ApiView, paginate, q_filter, q_terms
from ..schema import PAGE_HEADERS, done, errors, listing, location, page_parameters
from .shapes import (
    ARTIFACT_FILTERS,
    ARTIFACT_PARAMETERS,
    PROJECT_PARAMETER,
    REPOSITORY_PARAMETERS,
    WITH_PARAMETERS,
    ArtifactSerializer,
    RepositorySerializer,
    TagSerializer,
    artifact_out,
    flag,
    repository_out,
    tag_out,
)


class RepositoryApiView(ApiView):
    """Resolves and authorizes the project, repository and artifact named in the URL."""

    anonymous_reads = True

    def repository(self, project: str, repo: str, permission: tuple[str, str]) -> Repository:
        found = self.visible_project(project)
        self.require(permission, found)
        repository = repository_get(project=found, name=unquote(repo))
        repository.project = found
        return repository

    def artifact(
        self, project: str, repo: str, reference: str, permission: tuple[str, str]
    ) -> Manifest:
        repository = self.repository(project, repo, permission)
        manifest = artifact_get(repository=repository, reference=reference)
        manifest.repository = repository
        return manifest

    def describe(self, manifests: list[Manifest], repository: Repository) -> list[dict]:
        """The artifacts as the query's with_tag, with_label and with_accessory ask."""
        shown = {
            name
            for name, param, default in (
                ("tags", "with_tag", True),
                ("labels", "with_label", False),
                ("accessories", "with_accessory", False),
            )
            if flag(self.request, param, default)
        }
        if "labels" in shown and not self.may((Res.LABEL, Act.LIST), repository.project):
            shown.discard("labels")
        described = artifacts_describe(
            manifests,
            repository=repository,
            with_tag="tags" in shown,
            with_label="labels" in shown,
            with_accessory="accessories" in shown,
        )
        names = [t.name for a in described for t in a.tags] if "tags" in shown else []
        frozen = set(immutable_tags(repository=repository, names=names))
        return [artifact_out(a, repository, shown, frozen) for a in described]


class RepositoryListView(RepositoryApiView):
    """GET a project's repositories (q: name)."""

    @extend_schema(
        operation_id="listRepositories",
        summary="List a project's repositories",
        parameters=[PROJECT_PARAMETER, *page_parameters("name"), *PAGE_HEADERS],
        responses=listing(RepositorySerializer, 400, 401, 403, 404),
    )
    def get(self, request: Request, project: str) -> Response:
        found = self.visible_project(project)
        self.require((Res.REPOSITORY, Act.LIST), found)
        repositories = q_filter(
            repositories_of(found), q_terms(request, ("name",)), {"name": "name"}
        )
        return paginate(request, repositories, repository_out)


class RepositoryView(RepositoryApiView):
    """GET one repository (seeing one is seeing an entry of the list); DELETE it."""

    @extend_schema(
        operation_id="getRepository",
        summary="Get a repository",
        parameters=REPOSITORY_PARAMETERS,
        responses={200: RepositorySerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, project: str, repo: str) -> Response:
        repository = self.repository(project, repo, (Res.REPOSITORY, Act.LIST))
        return Response(repository_out(repositories_of(repository.project).get(pk=repository.pk)))

    @extend_schema(
        operation_id="deleteRepository",
        summary="Delete a repository with its artifacts and tags",
        parameters=REPOSITORY_PARAMETERS,
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def delete(self, request: Request, project: str, repo: str) -> Response:
        repository = self.repository(project, repo, (Res.REPOSITORY, Act.DELETE))
        repository_delete(repository=repository, actor=self.actor)
        return Response(status=200)


class ArtifactListView(RepositoryApiView):
    """GET a repository's artifacts, newest push first (q: tags, media_type, digest, labels)."""

    @extend_schema(
        operation_id="listArtifacts",
        summary="List a repository's artifacts, newest push first",
        description=(
            "Untagged children of an index and untagged referrers are not listed: they show "
            "in their index's references and their subject's accessories."
        ),
        parameters=[
            *REPOSITORY_PARAMETERS,
            *page_parameters(
                *ARTIFACT_FILTERS,
                doc=(
                    "tags: a tag, * (any tag) or nil (untagged); media_type: the manifest's "
                    "or the artifact type; digest; labels: label ids, (1 2) all of, "
                    "{1 2} any of."
                ),
            ),
            *WITH_PARAMETERS,
            *PAGE_HEADERS,
        ],
        responses=listing(ArtifactSerializer, 400, 401, 403, 404),
    )
    def get(self, request: Request, project: str, repo: str) -> Response:
        repository = self.repository(project, repo, (Res.ARTIFACT, Act.LIST))
        artifacts = artifacts_of(repository)
        try:
            for term in q_terms(request, ARTIFACT_FILTERS):
                artifacts = artifacts_filter(
                    artifacts, key=term.key, value=term.value, fuzzy=term.fuzzy
                )
        except ValueError:
            raise ParseError(
                "labels are label ids: labels=(1 2), labels={1 2} or labels=1"
            ) from None
        response = paginate(request, artifacts, lambda m: m)
        response.data = self.describe(list(response.data), repository)
        return response


class ArtifactView(RepositoryApiView):
    """GET one artifact by digest or tag; DELETE it with its tags and referrers."""

    @extend_schema(
        operation_id="getArtifact",
        summary="Get an artifact by digest or tag",
        parameters=[*ARTIFACT_PARAMETERS, *WITH_PARAMETERS],
        responses={200: ArtifactSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, project: str, repo: str, reference: str) -> Response:
        manifest = self.artifact(project, repo, reference, (Res.ARTIFACT, Act.READ))
        return Response(self.describe([manifest], manifest.repository)[0])

    @extend_schema(
        operation_id="deleteArtifact",
        summary="Delete an artifact with its tags and referrers",
        description="A child of an index cannot be deleted alone (412): delete the index.",
        parameters=ARTIFACT_PARAMETERS,
        responses={**done(), **errors(400, 401, 403, 404, 412)},
    )
    def delete(self, request: Request, project: str, repo: str, reference: str) -> Response:
        manifest = self.artifact(project, repo, reference, (Res.ARTIFACT, Act.DELETE))
        artifact_delete(manifest=manifest, actor=self.actor)
        return Response(status=200)


class TagIn(serializers.Serializer):
    name = serializers.CharField(max_length=128)


class TagListView(RepositoryApiView):
    """GET an artifact's tags; POST puts a new one on it (``{"name": "v2"}``)."""

    @extend_schema(
        operation_id="listTags",
        summary="List an artifact's tags",
        parameters=[*ARTIFACT_PARAMETERS, *page_parameters("name"), *PAGE_HEADERS],
        responses=listing(TagSerializer, 400, 401, 403, 404),
    )
    def get(self, request: Request, project: str, repo: str, reference: str) -> Response:
        manifest = self.artifact(project, repo, reference, (Res.TAG, Act.LIST))
        tags = Tag.objects.filter(manifest=manifest).order_by("name")
        names = list(tags.values_list("name", flat=True))
        frozen = set(immutable_tags(repository=manifest.repository, names=names))
        return paginate(
            request,
            q_filter(tags, q_terms(request, ("name",)), {"name": "name"}),
            lambda tag: tag_out(tag, frozen),
        )

    @extend_schema(
        operation_id="createTag",
        summary="Put a new tag on an artifact",
        request=TagIn,
        parameters=[*ARTIFACT_PARAMETERS, location("The new tag.")],
        responses={**done("Created.", 201), **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, project: str, repo: str, reference: str) -> Response:
        manifest = self.artifact(project, repo, reference, (Res.TAG, Act.CREATE))
        body = TagIn(data=request.data)
        body.is_valid(raise_exception=True)
        tag = tag_create(manifest=manifest, name=body.validated_data["name"], actor=self.actor)
        response = Response(status=201)
        response["Location"] = f"{request.path}/{quote(tag.name)}"
        return response


class TagView(RepositoryApiView):
    """DELETE one tag of the artifact."""

    @extend_schema(
        operation_id="deleteTag",
        summary="Delete a tag of an artifact",
        parameters=[*ARTIFACT_PARAMETERS, OpenApiParameter("tag", str, OpenApiParameter.PATH)],
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def delete(
        self, request: Request, project: str, repo: str, reference: str, tag: str
    ) -> Response:
        manifest = self.artifact(project, repo, reference, (Res.TAG, Act.DELETE))
        tag_delete(manifest=manifest, name=tag, actor=self.actor)
        return Response(status=200)


class LabelRefIn(serializers.Serializer):
    id = serializers.IntegerField(min_value=1, help_text="The label's id.")


class ArtifactLabelsView(RepositoryApiView):
    """POST ``{"id": N}`` puts label N on the artifact."""

    @extend_schema(
        operation_id="addLabel",
        summary="Put a label on an artifact",
        description="A global label, or one of the artifact's project (else 400).",
        request=LabelRefIn,
        parameters=ARTIFACT_PARAMETERS,
        responses={**done(), **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, project: str, repo: str, reference: str) -> Response:
        manifest = self.artifact(project, repo, reference, (Res.ARTIFACT_LABEL, Act.CREATE))
        body = LabelRefIn(data=request.data)
        body.is_valid(raise_exception=True)
        label = Label.objects.filter(pk=body.validated_data["id"]).first()
        if label is None:
            raise LabelUnknown(f"no label {body.validated_data['id']}")
        artifact_label_add(manifest=manifest, label=label, actor=self.actor)
        return Response(status=200)


class ArtifactLabelView(RepositoryApiView):
    """DELETE takes label N off the artifact."""

    @extend_schema(
        operation_id="removeLabel",
        summary="Take a label off an artifact",
        parameters=[
            *ARTIFACT_PARAMETERS,
            OpenApiParameter("label_id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        responses={**done(), **errors(400, 401, 403, 404)},
    )
    def delete(
        self, request: Request, project: str, repo: str, reference: str, label_id: str
    ) -> Response:
        manifest = self.artifact(project, repo, reference, (Res.ARTIFACT_LABEL, Act.DELETE))
        artifact_label_remove(manifest=manifest, label_id=int(label_id), actor=self.actor)
        return Response(status=200)
