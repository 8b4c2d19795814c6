"""Reading the console's form fields: sizes, flags, roles, page numbers."""

from __future__ import annotations

from django.http import QueryDict

from projects.sizes import SizeInvalid
from projects.sizes import size_parse as parse


class FieldInvalid(ValueError):
    """A form field that cannot be read; the message is shown to the user."""


def size_parse(text: str) -> int | None:
    """A quota field: a size, or empty for no limit."""
    if not text.strip():
        return None
    try:
        return parse(text)
    except SizeInvalid as error:
        raise FieldInvalid(str(error)) from None


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


def hours_parse(text: str) -> int | None:
    """A retention period: a whole number of hours, or empty (the service says it is required)."""
    text = text.strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise FieldInvalid("the retention is a whole number of hours")
    return int(text)
