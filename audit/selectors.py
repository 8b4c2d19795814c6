"""Reading and checking the audit log."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from .models import GENESIS, AuditEntry, AuditHead
from .services import entry_hash


@dataclass(frozen=True)
class ChainCheck:
    """The result of walking the chain: intact, or where it first breaks."""

    entries: int
    broken_at: AuditEntry | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return not self.reason


def audit_verify() -> ChainCheck:
    """Walk every entry in order and check each link; report the first broken one."""
    expected = GENESIS
    count = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.previous_hash != expected:
            return ChainCheck(count, entry, "an entry before it was removed or reordered")
        if entry_hash(entry.previous_hash, entry) != entry.hash:
            return ChainCheck(count, entry, "its recorded fields were changed")
        expected = entry.hash
        count += 1
    head = AuditHead.objects.filter(id=1).first()
    if (head.hash if head else GENESIS) != expected:
        return ChainCheck(count, None, "the newest entries were removed")
    return ChainCheck(count)


def audit_list(
    *,
    actor: str = "",
    action: str = "",
    resources: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
) -> QuerySet[AuditEntry]:
    """Entries, newest first: by ``actor`` and ``action`` when given, and when ``resources``
    or ``prefixes`` are given, only those whose resource is one of them or starts with one."""
    entries = AuditEntry.objects.order_by("-id")
    if actor:
        entries = entries.filter(actor=actor)
    if action:
        entries = entries.filter(action=action)
    if resources or prefixes:
        scope = Q(resource__in=resources)
        for prefix in prefixes:
            scope |= Q(resource__startswith=prefix)
        entries = entries.filter(scope)
    return entries


def audit_actions() -> list[str]:
    """The action names the log holds, for a filter's choices."""
    return sorted(AuditEntry.objects.values_list("action", flat=True).distinct().order_by())
