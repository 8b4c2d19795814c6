"""The token service's own rules: remembered verifications still expire."""

from __future__ import annotations

import time

import jwt
import pytest

from rbac.exceptions import CredentialsInvalid
from rbac.tokens import LEEWAY, signing_key, token_verify


def test_a_token_verified_before_is_refused_once_it_expires(settings) -> None:
    now = int(time.time())
    claims = {
        "iss": settings.HARBORPY_TOKEN_ISSUER,
        "aud": settings.HARBORPY_TOKEN_SERVICE,
        "sub": "someone",
        "iat": now - 60,
        "exp": now - LEEWAY + 1,  # expired, but within the tolerated clock difference
        "access": [{"type": "repository", "name": "p/app", "actions": ["pull"]}],
    }
    token = jwt.encode(claims, signing_key().private, algorithm="RS256")
    assert token_verify(token).token_access == {("repository", "p/app", "pull")}
    assert token_verify(token).name == "someone"  # remembered
    time.sleep(1.5)
    with pytest.raises(CredentialsInvalid):
        token_verify(token)


def test_an_unknown_principal_kind_is_refused(settings) -> None:
    now = int(time.time())
    claims = {
        "iss": settings.HARBORPY_TOKEN_ISSUER,
        "aud": settings.HARBORPY_TOKEN_SERVICE,
        "sub": "x",
        "kind": "martian",
        "iat": now,
        "exp": now + 60,
        "access": [],
    }
    with pytest.raises(CredentialsInvalid):
        token_verify(jwt.encode(claims, signing_key().private, algorithm="RS256"))
