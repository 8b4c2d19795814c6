"""The one place that turns digests and upload ids into storage keys.

blobs/<algorithm>/<first two hex digits>/<hex>
uploads/<session id>/...
"""

from __future__ import annotations

import re

_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


def blob_key(digest: str) -> str:
    """Key of the blob stored under ``digest`` (``sha256:<hex>``)."""
    if not _DIGEST.match(digest):
        raise ValueError(f"not a storable digest: {digest!r}")
    algorithm, hex_ = digest.split(":", 1)
    return f"blobs/{algorithm}/{hex_[:2]}/{hex_}"


def digest_from_blob_key(key: str) -> str | None:
    """The digest a blob key stands for, or None for anything else under blobs/."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "blobs":
        return None
    digest = f"{parts[1]}:{parts[3]}"
    return digest if _DIGEST.match(digest) and parts[2] == parts[3][:2] else None


def upload_prefix(upload_id: str) -> str:
    """Folder (prefix) holding the data of one upload session."""
    if not _UPLOAD_ID.match(upload_id):
        raise ValueError(f"not an upload id: {upload_id!r}")
    return f"uploads/{upload_id}"


def upload_part_key(upload_id: str, offset: int) -> str:
    """Key of the piece of an upload that starts at ``offset`` (sorts by offset)."""
    return f"{upload_prefix(upload_id)}/{offset:016x}"


def offset_from_part_key(key: str) -> int:
    """The start offset a part key encodes."""
    return int(key.rsplit("/", 1)[1], 16)


def algorithm_of(digest: str) -> str:
    """The hash algorithm of a digest (``sha256`` or ``sha512``)."""
    return digest.split(":", 1)[0]
