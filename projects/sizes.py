"""Sizes as people write and read them: ``10G`` in, ``1.5 KiB`` out (binary units)."""

from __future__ import annotations

import re

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)


class SizeInvalid(ValueError):
    """Not a size: bytes, or a number with K, M, G or T."""


def size_parse(text: str) -> int:
    """``10G``, ``512 MiB``, ``1048576`` → bytes."""
    match = SIZE.fullmatch(text.strip())
    if not match:
        raise SizeInvalid(f"not a size: {text!r} (use bytes, or a number with K, M, G or T)")
    return int(match.group(1)) * UNITS[match.group(2).upper()]


def size_format(size: int | None) -> str:
    """Bytes in binary units: ``0 B``, ``1023 B``, ``1.5 KiB``, ``123 MiB``; None is unlimited."""
    if size is None:
        return "unlimited"
    value = float(size)
    unit = "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    if unit == "B":
        return f"{size} B"
    return f"{value:.1f} {unit}".replace(".0 ", " ")
