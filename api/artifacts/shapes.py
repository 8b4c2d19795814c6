"""Repositories, artifacts and tags in Harbor's shapes: what the views answer, and the
serializers that document it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request

from distribution.artifacts import (
    ACCESSORY_KINDS,
    KINDS,
    Artifact,
    accessory_kind,
)
from distribution.models import Label, Manifest, Repository, Tag

ARTIFACT_FILTERS = ("tags", "media_type", "digest", "labels")
ARTIFACT_TYPES = sorted({*KINDS.values(), "UNKNOWN"})
ACCESSORY_TYPES = sorted({*ACCESSORY_KINDS.values(), "subject.accessory"})


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() in ("true", "1")


def repository_out(repository: Repository) -> dict[str, Any]:
    return {
        "id": repository.pk,
        "project_id": repository.project_id,
        "name": repository.name,
        "description": "",
        "artifact_count": getattr(repository, "artifact_count", None),
        "pull_count": repository.pull_count,
        "creation_time": iso(repository.created_at),
        "update_time": iso(getattr(repository, "update_time", None)),
    }


def tag_out(tag: Tag, frozen: Collection[str] = ()) -> dict[str, Any]:
    """Harbor's tag; ``frozen`` names the repository's tags an immutability rule covers."""
    return {
        "id": tag.pk,
        "repository_id": tag.repository_id,
        "artifact_id": tag.manifest_id,
        "name": tag.name,
        "push_time": iso(tag.pushed_at),
        "pull_time": iso(tag.pulled_at),
        "immutable": tag.name in frozen,
        "signed": False,
    }


def label_out(label: Label) -> dict[str, Any]:
    return {
        "id": label.pk,
        "name": label.name,
        "description": label.description,
        "color": label.color,
        "scope": label.scope,
        "project_id": label.project_id or 0,
        "creation_time": iso(label.created_at),
        "update_time": iso(label.updated_at),
        "deleted": False,
    }


def accessory_out(referrer: Manifest, subject: Manifest, repository: Repository) -> dict:
    return {
        "id": referrer.pk,
        "artifact_id": referrer.pk,
        "subject_artifact_id": subject.pk,
        "subject_artifact_digest": subject.digest,
        "subject_artifact_repo": repository.name,
        "digest": referrer.digest,
        "size": referrer.size,
        "type": accessory_kind(referrer),
        "artifact_type": referrer.artifact_type,
        "icon": "",
        "creation_time": iso(referrer.pushed_at),
    }


def artifact_out(
    artifact: Artifact, repository: Repository, shown: set[str], frozen: Collection[str] = ()
) -> dict[str, Any]:
    """Harbor's artifact; ``shown`` says which of tags, labels, accessories were loaded."""
    m = artifact.manifest
    return {
        "id": m.pk,
        "type": artifact.kind,
        "media_type": m.artifact_type or m.media_type,
        "manifest_media_type": m.media_type,
        "artifact_type": m.artifact_type,
        "project_id": repository.project_id,
        "repository_id": repository.pk,
        "repository_name": repository.name,
        "digest": m.digest,
        "size": artifact.size,
        "icon": "",
        "push_time": iso(m.pushed_at),
        "pull_time": iso(m.pulled_at),
        "extra_attrs": m.extra_attrs or {},
        "annotations": m.annotations or {},
        "platforms": artifact.platforms,
        "references": [
            {
                "parent_id": m.pk,
                "child_id": r.child_id,
                "child_digest": r.digest,
                "platform": r.platform,
                "annotations": r.annotations,
                "urls": r.urls,
            }
            for r in artifact.references
        ],
        "tags": [tag_out(t, frozen) for t in artifact.tags] if "tags" in shown else None,
        "labels": [label_out(x) for x in artifact.labels] if "labels" in shown else None,
        "accessories": (
            [accessory_out(a, m, repository) for a in artifact.accessories]
            if "accessories" in shown
            else None
        ),
    }


# --- what the document says they answer ------------------------------------------------------


class RepositorySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    name = serializers.CharField(help_text="With the project's prefix: library/app.")
    description = serializers.CharField(allow_blank=True, help_text="Always empty.")
    artifact_count = serializers.IntegerField(
        help_text="Artifacts a list shows (not the untagged children of an index or referrers)."
    )
    pull_count = serializers.IntegerField()
    creation_time = serializers.DateTimeField()
    update_time = serializers.DateTimeField(help_text="The latest push, or the creation.")


class TagSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    repository_id = serializers.IntegerField()
    artifact_id = serializers.IntegerField()
    name = serializers.CharField()
    push_time = serializers.DateTimeField()
    pull_time = serializers.DateTimeField(allow_null=True)
    immutable = serializers.BooleanField(help_text="Always false.")
    signed = serializers.BooleanField(help_text="Always false.")


class LabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    color = serializers.CharField(allow_blank=True, help_text="#rrggbb, or empty.")
    scope = serializers.ChoiceField(choices=["g", "p"], help_text="g: global; p: a project's.")
    project_id = serializers.IntegerField(help_text="0 for a global label.")
    creation_time = serializers.DateTimeField()
    update_time = serializers.DateTimeField()
    deleted = serializers.BooleanField(help_text="Always false.")


class PlatformSerializer(serializers.Serializer):
    """An index entry's platform, as the index lists it."""

    architecture = serializers.CharField()
    os = serializers.CharField()
    variant = serializers.CharField(required=False)
    features = serializers.ListField(child=serializers.CharField(), required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["os.version"] = serializers.CharField(required=False)
        fields["os.features"] = serializers.ListField(child=serializers.CharField(), required=False)
        return fields


class ReferenceSerializer(serializers.Serializer):
    """A child of an index."""

    parent_id = serializers.IntegerField()
    child_id = serializers.IntegerField(
        allow_null=True, help_text="Null when the child is not stored in the repository."
    )
    child_digest = serializers.CharField()
    platform = PlatformSerializer(allow_null=True)
    annotations = serializers.DictField(child=serializers.CharField(), allow_null=True)
    urls = serializers.ListField(child=serializers.CharField())


class AccessorySerializer(serializers.Serializer):
    """A referrer of the artifact (a signature, an SBOM...)."""

    id = serializers.IntegerField()
    artifact_id = serializers.IntegerField()
    subject_artifact_id = serializers.IntegerField()
    subject_artifact_digest = serializers.CharField()
    subject_artifact_repo = serializers.CharField()
    digest = serializers.CharField()
    size = serializers.IntegerField(help_text="Of the referrer's manifest.")
    type = serializers.ChoiceField(choices=ACCESSORY_TYPES)
    artifact_type = serializers.CharField(allow_blank=True)
    icon = serializers.CharField(allow_blank=True)
    creation_time = serializers.DateTimeField()


class RunSettingsSerializer(serializers.Serializer):
    """The image config's run settings (those it sets)."""

    Cmd = serializers.ListField(child=serializers.CharField(), required=False)
    Entrypoint = serializers.ListField(child=serializers.CharField(), required=False)
    Env = serializers.ListField(child=serializers.CharField(), required=False)
    ExposedPorts = serializers.DictField(child=serializers.DictField(), required=False)
    Labels = serializers.DictField(child=serializers.CharField(), required=False)
    User = serializers.CharField(required=False, allow_blank=True)
    WorkingDir = serializers.CharField(required=False, allow_blank=True)


class ExtraAttrsSerializer(serializers.Serializer):
    """What an image's config says; empty for other artifacts."""

    architecture = serializers.CharField(required=False)
    os = serializers.CharField(required=False)
    variant = serializers.CharField(required=False)
    created = serializers.CharField(required=False)
    author = serializers.CharField(required=False, allow_blank=True)
    config = RunSettingsSerializer(required=False)


class ArtifactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=ARTIFACT_TYPES)
    media_type = serializers.CharField(help_text="The artifact type, else the manifest's.")
    manifest_media_type = serializers.CharField()
    artifact_type = serializers.CharField(
        allow_blank=True, help_text="artifactType, or the config's media type."
    )
    project_id = serializers.IntegerField()
    repository_id = serializers.IntegerField()
    repository_name = serializers.CharField()
    digest = serializers.CharField()
    size = serializers.IntegerField(help_text="The manifest, its blobs and its children's.")
    icon = serializers.CharField(allow_blank=True)
    push_time = serializers.DateTimeField()
    pull_time = serializers.DateTimeField(allow_null=True)
    extra_attrs = ExtraAttrsSerializer()
    annotations = serializers.DictField(child=serializers.CharField())
    platforms = PlatformSerializer(many=True, help_text="An index's; empty for others.")
    references = ReferenceSerializer(many=True, help_text="An index's children.")
    tags = TagSerializer(many=True, allow_null=True, help_text="Null unless with_tag.")
    labels = LabelSerializer(
        many=True,
        allow_null=True,
        help_text="Null unless with_label (and the caller may list the project's labels).",
    )
    accessories = AccessorySerializer(
        many=True, allow_null=True, help_text="Null unless with_accessory."
    )


PROJECT_PARAMETER = OpenApiParameter(
    "project", str, OpenApiParameter.PATH, description="The project's name or id."
)
REPOSITORY_PARAMETERS = [
    PROJECT_PARAMETER,
    OpenApiParameter(
        "repo",
        str,
        OpenApiParameter.PATH,
        description="The name without the project's prefix; a nested one as a%252Fb or a/b.",
    ),
]
ARTIFACT_PARAMETERS = [
    *REPOSITORY_PARAMETERS,
    OpenApiParameter("reference", str, OpenApiParameter.PATH, description="A digest or a tag."),
]
WITH_PARAMETERS = [
    OpenApiParameter(name, bool, description=text)
    for name, text in (
        ("with_tag", "Show the tags (default true)."),
        ("with_label", "Show the labels (default false)."),
        ("with_accessory", "Show the referrers: signatures, SBOMs (default false)."),
    )
]
