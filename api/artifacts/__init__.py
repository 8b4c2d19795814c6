"""The REST API's repositories, artifacts, tags and artifact labels (see views)."""

from .shapes import LabelSerializer, label_out
from .views import (
    ArtifactLabelsView,
    ArtifactLabelView,
    ArtifactListView,
    ArtifactView,
    LabelRefIn,
    RepositoryApiView,
    RepositoryListView,
    RepositoryView,
    TagIn,
    TagListView,
    TagView,
)

__all__ = [
    "ArtifactLabelView",
    "ArtifactLabelsView",
    "ArtifactListView",
    "ArtifactView",
    "LabelRefIn",
    "LabelSerializer",
    "RepositoryApiView",
    "RepositoryListView",
    "RepositoryView",
    "TagIn",
    "TagListView",
    "TagView",
    "label_out",
]
