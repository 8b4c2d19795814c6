"""CLI secrets: the password SSO users (and anyone else) give to docker login.

The secret is random, so a SHA-256 digest is enough to check it; it is also
kept sealed with a key derived from SECRET_KEY so the profile can show it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction

from audit.services import Actor, audit_record

from .models import CliSecret
from .sealing import seal, unseal

PURPOSE = "cli-secret"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cli_secret_get(*, user) -> str:
    """The user's CLI secret, created on first request."""
    row = CliSecret.objects.filter(user=user).first()
    if row is None:
        return cli_secret_regenerate(user=user, actor=Actor(user.get_username(), ""))
    return unseal(PURPOSE, row.sealed)


def cli_secret_regenerate(*, user, actor: Actor) -> str:
    """Give the user a new CLI secret; the old one stops working at once."""
    secret = secrets.token_urlsafe(24)
    with transaction.atomic():
        CliSecret.objects.update_or_create(
            user=user,
            defaults={
                "digest": _digest(secret),
                "sealed": seal(PURPOSE, secret),
            },
        )
        audit_record(
            actor=actor,
            action="permission",
            resource=f"user:{user.get_username()}",
            detail={"change": "cli secret regenerated"},
        )
    return secret


def cli_secret_matches(*, user, secret: str) -> bool:
    """Whether ``secret`` is the user's current CLI secret."""
    row = CliSecret.objects.filter(user=user).first()
    return row is not None and hmac.compare_digest(row.digest, _digest(secret))
