"""User groups, as the system admin manages them: create, rename, delete.

A group holds project roles (rbac.bindings) for its members.  Members come
from LDAP or SSO logins (rbac.pipeline); groups made here are HTTP groups in
Harbor's terms.  Every change is audited (action ``group``, resource ``group:<name>``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from audit.services import Actor, audit_record

from .exceptions import GroupExists, GroupInvalid
from .models import GroupType

GROUP_NAME_MAX = Group._meta.get_field("name").max_length or 150


def group_type_of(group: Group) -> int:
    """The group's type: as stored, else by the login method that made it (LDAP, OIDC)."""
    try:
        return group.kind.group_type  # type: ignore[attr-defined]
    except GroupType.DoesNotExist:
        pass
    if settings.HARBORPY_OIDC_ENDPOINT:
        return GroupType.OIDC
    if getattr(settings, "AUTH_LDAP_SERVER_URI", ""):
        return GroupType.LDAP
    return GroupType.HTTP


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > GROUP_NAME_MAX:
        raise GroupInvalid(f"a group name has 1 to {GROUP_NAME_MAX} characters")
    return name


def group_create(*, name: str, group_type: int = GroupType.HTTP, actor: Actor) -> Group:
    """Create a group; GroupExists if the name is taken."""
    name = _check_name(name)
    if group_type not in dict(GroupType.CHOICES):
        raise GroupInvalid("group_type is 1 (LDAP), 2 (HTTP) or 3 (OIDC)")
    try:
        with transaction.atomic():
            group = Group.objects.create(name=name)
            GroupType.objects.create(group=group, group_type=group_type)
            _audit(actor, group, "created", group_type=group_type)
    except IntegrityError:
        raise GroupExists(f"group {name!r} exists already") from None
    return group


def group_rename(*, group: Group, name: str, actor: Actor) -> Group:
    """Give a group a new name; its members and role bindings stay."""
    name = _check_name(name)
    if name == group.name:
        return group
    old = group.name
    try:
        with transaction.atomic():
            group.name = name
            group.save(update_fields=["name"])
            _audit(actor, group, "renamed", previous=old)
    except IntegrityError:
        group.name = old
        raise GroupExists(f"group {name!r} exists already") from None
    return group


def group_delete(*, group: Group, actor: Actor) -> None:
    """Delete a group with its role bindings; its members lose what the group gave them."""
    with transaction.atomic():
        _audit(actor, group, "deleted")
        group.delete()


def _audit(actor: Actor, group: Group, change: str, **detail: Any) -> None:
    audit_record(
        actor=actor,
        action="group",
        resource=f"group:{group.name}",
        detail={"change": change, **detail},
    )
