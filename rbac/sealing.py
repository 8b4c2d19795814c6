"""Secrets kept so they can be read back (a CLI secret to show, a registry password to
send), sealed with a key derived from SECRET_KEY and a purpose.

Every node of a deployment shares SECRET_KEY (HARBORPY_SECRET_KEY), so each can open
what another sealed.  A different purpose gives a different key: a token sealed for one
use does not open for another.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SealBroken(Exception):
    """The token was not sealed with this SECRET_KEY and purpose, or was altered."""


def _fernet(purpose: str) -> Fernet:
    key = hashlib.sha256(f"harborpy-{purpose}:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(purpose: str, text: str) -> str:
    return _fernet(purpose).encrypt(text.encode()).decode()


def unseal(purpose: str, token: str) -> str:
    try:
        return _fernet(purpose).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SealBroken(
            f"a sealed {purpose} could not be opened (was SECRET_KEY changed?)"
        ) from None
