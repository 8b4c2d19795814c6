"""Access to the configured blob store (one instance per process and storage URL)."""

from __future__ import annotations

import threading

from django.conf import settings

from .storage import BlobStore, open_store

_stores: dict[tuple[str, bool], BlobStore] = {}
_lock = threading.Lock()


def blob_store() -> BlobStore:
    """The blob store the settings name, opened once and then reused."""
    key = (settings.HARBORPY_STORAGE, settings.HARBORPY_STORAGE_FSYNC)
    store = _stores.get(key)
    if store is None:
        with _lock:
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = open_store(key[0], fsync=key[1])
    return store
