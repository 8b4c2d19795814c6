"""Labels and the labels on artifacts; each write audited.

A global label (scope ``g``) may go on any artifact; a project's label
(scope ``p``) only on artifacts of that project.  Who may create which is the
caller's question (``rbac.policy.authorize``); these functions keep the data
consistent.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from audit.services import Actor, audit_record
from projects.models import Project

from ..exceptions import ArtifactLabelExists, LabelExists, LabelInvalid, LabelUnknown
from ..models import ArtifactLabel, Label, Manifest


def _resource(label: Label) -> str:
    where = f"project:{label.project.name}" if label.project else "global"
    return f"label:{where}:{label.name}"


def label_create(
    *, name: str, color: str, description: str, project: Project | None, actor: Actor
) -> Label:
    """A new label: global when ``project`` is None (LabelExists if the name is taken there)."""
    scope = Label.PROJECT if project is not None else Label.GLOBAL
    try:
        with transaction.atomic():
            label = Label.objects.create(
                name=name, color=color, description=description, scope=scope, project=project
            )
            audit_record(
                actor=actor,
                action="label",
                resource=_resource(label),
                detail={"change": "created", "color": color},
            )
    except IntegrityError:
        raise LabelExists(f"label {name!r} exists already in this scope") from None
    return label


def label_update(*, label: Label, changes: dict[str, Any], actor: Actor) -> Label:
    """Change a label's name, color or description (its scope and project stay)."""
    fields = [key for key in ("name", "color", "description") if key in changes]
    for key in fields:
        setattr(label, key, changes[key])
    try:
        with transaction.atomic():
            label.save(update_fields=[*fields, "updated_at"])
            audit_record(
                actor=actor,
                action="label",
                resource=_resource(label),
                detail={"change": "updated", **{key: changes[key] for key in fields}},
            )
    except IntegrityError:
        raise LabelExists(f"label {label.name!r} exists already in this scope") from None
    return label


def label_delete(*, label: Label, actor: Actor) -> None:
    """Delete a label; it comes off every artifact that carries it."""
    with transaction.atomic():
        audit_record(
            actor=actor, action="label", resource=_resource(label), detail={"change": "deleted"}
        )
        label.delete()


def artifact_label_add(*, manifest: Manifest, label: Label, actor: Actor) -> None:
    """Put ``label`` on an artifact: LabelInvalid for another project's label,
    ArtifactLabelExists if it is there already."""
    repository = manifest.repository
    if label.project_id is not None and label.project_id != repository.project_id:
        raise LabelInvalid(
            f"label {label.name!r} belongs to another project; use a global label or one of "
            f"this project's"
        )
    with transaction.atomic():
        _, created = ArtifactLabel.objects.get_or_create(manifest=manifest, label=label)
        if not created:
            raise ArtifactLabelExists(f"the artifact carries label {label.name!r} already")
        audit_record(
            actor=actor,
            action="label",
            resource=f"{repository.name}@{manifest.digest}",
            detail={"change": "added", "label": label.name, "label_id": label.pk},
        )


def artifact_label_remove(*, manifest: Manifest, label_id: int, actor: Actor) -> None:
    """Take a label off an artifact (LabelUnknown if it does not carry it)."""
    repository = manifest.repository
    with transaction.atomic():
        link = (
            ArtifactLabel.objects.select_related("label")
            .filter(manifest=manifest, label_id=label_id)
            .first()
        )
        if link is None:
            raise LabelUnknown(f"the artifact carries no label {label_id}")
        link.delete()
        audit_record(
            actor=actor,
            action="label",
            resource=f"{repository.name}@{manifest.digest}",
            detail={"change": "removed", "label": link.label.name, "label_id": label_id},
        )
