"""Reading the console's form fields: sizes, flags, roles, page numbers."""

from __future__ import annotations

import re

from django.http import QueryDict

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class FieldInvalid(ValueError):
    """A form field that cannot be read; the message is shown to the user."""


def size_parse(text: str) -> int | None:
    """``10G``, ``512 MiB``, ``1048576`` → bytes; empty → None (no limit)."""
    text = text.strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
    if not match:
        raise FieldInvalid(f"not a size: {text!r} (use bytes, or a number with K, M, G or T)")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def size_format(size: int | None) -> str:
    if size is None:
        return "unlimited"
    for unit in ("T", "G", "M", "K"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.1f} {unit}iB"
    return f"{size} B"


def flag(data: QueryDict, name: str) -> bool:
    """A checkbox or a hidden ``1``/``0`` field."""
    return data.get(name, "") in ("1", "on", "true")


def days_parse(text: str) -> int | None:
    """A robot's lifetime: a number of days, or empty for never."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit():
        raise FieldInvalid("the lifetime is a number of days, or empty for never")
    return int(text)
