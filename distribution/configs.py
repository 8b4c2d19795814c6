"""What an image's config blob says about it: architecture, OS, creation time, run settings.

Read once when the manifest is pushed, from the blob store in fixed chunks and
only for configs up to ``CONFIG_MAX`` bytes (a config is usually a few KiB; a
larger one is left unread rather than held in memory).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .blobstore import blob_store
from .storage import StorageError

logger = logging.getLogger(__name__)

CONFIG_MAX = 256 * 1024
IMAGE_CONFIG_TYPES = frozenset(
    {
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    }
)
# The parts of the config's "config" object worth showing (Harbor's extra_attrs.config).
RUN_SETTINGS = ("Cmd", "Entrypoint", "Env", "ExposedPorts", "Labels", "User", "WorkingDir")


def config_attrs(*, media_type: str, digest: str, size: int) -> dict[str, Any] | None:
    """``extra_attrs`` of an image from its config blob; None when it is no image config,
    too large, missing or unreadable (nothing to show, and not worth failing a push for)."""
    if media_type not in IMAGE_CONFIG_TYPES or size > CONFIG_MAX:
        return None
    try:
        reader = blob_store().blob_open(digest, 0, size)
    except (StorageError, OSError):
        logger.warning("config blob %s could not be opened", digest)
        return None
    try:
        data = bytearray()
        for chunk in reader.chunks:
            data += chunk
            if len(data) > CONFIG_MAX:
                return None
    except (StorageError, OSError):
        logger.warning("config blob %s could not be read", digest)
        return None
    finally:
        reader.close()
    return _attrs(bytes(data))


def _attrs(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    attrs = {
        key: document[key]
        for key in ("architecture", "os", "variant", "created", "author")
        if isinstance(document.get(key), str)
    }
    run = document.get("config")
    if isinstance(run, dict):
        attrs["config"] = {key: run[key] for key in RUN_SETTINGS if run.get(key) is not None}
    return attrs
