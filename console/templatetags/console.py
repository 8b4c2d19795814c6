"""Filters for the console's templates."""

from __future__ import annotations

from typing import Any

from django import template

from projects.sizes import size_format

register = template.Library()

MEDIA_TYPES = {
    "application/vnd.oci.image.manifest.v1+json": "OCI image",
    "application/vnd.oci.image.index.v1+json": "OCI index",
    "application/vnd.docker.distribution.manifest.v2+json": "Docker image",
    "application/vnd.docker.distribution.manifest.list.v2+json": "Docker manifest list",
}


@register.filter
def size(value: int | None) -> str:
    return size_format(value)


@register.filter
def short_digest(digest: str) -> str:
    """``sha256:0123456789ab`` (the first 12 hex digits)."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:12]}" if encoded else digest


@register.filter
def media_kind(media_type: str) -> str:
    """A short name for a manifest media type (the full one goes in a title)."""
    return MEDIA_TYPES.get(media_type, media_type)


@register.filter
def percent(used: int, quota: int | None) -> int:
    if not quota:
        return 0
    return min(100, round(100 * used / quota))


@register.filter
def audit_detail(detail: dict) -> str:
    """``key=value, ...`` with digests shortened (the full detail goes in a title)."""
    if not isinstance(detail, dict):
        return str(detail)
    parts = []
    for key, value in detail.items():
        digest = isinstance(value, str) and value.startswith(("sha256:", "sha512:"))
        parts.append(f"{key}={short_digest(value) if digest else value}")
    return ", ".join(parts)


@register.filter
def size_input(value: int | None) -> str:
    """A size as the quota field reads it back: ``10G``, ``512M``, or bytes."""
    if not value:
        return ""
    for unit, factor in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


@register.filter
def took(run: Any) -> str:
    """How long a finished job took: ``0.4 s``, ``12 s``, ``3 min 5 s``."""
    if not (run.started_at and run.finished_at):
        return "-"
    seconds = (run.finished_at - run.started_at).total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
