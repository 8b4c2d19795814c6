"""The Docker token service: signed JWTs that carry the access a principal was granted.

The signing key (RSA, PEM) is generated at first start into the data folder
(``HARBORPY_TOKEN_KEY``); every node of one registry must read the same file.
A token's ``access`` is the requested scope intersected with what
``authorize_scope`` allows, so /v2/ needs no database to check a bearer.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from .exceptions import CredentialsInvalid, ServiceUnknown
from .policy import Kind, Principal, Resource, authorize_scope

ALGORITHM = "RS256"
LEEWAY = 5  # seconds of clock difference tolerated on exp, nbf and iat
# resourcetype[(resourceclass)]:name:actions; names may hold colons (host:port/...).
SCOPE = re.compile(r"^([a-z0-9]+)(?:\([a-z0-9]+\))?:(.+):([a-z*,]*)$")


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True)
class SigningKey:
    private: rsa.RSAPrivateKey
    public: rsa.RSAPublicKey
    kid: str


_key: SigningKey | None = None
_key_lock = threading.Lock()


def signing_key() -> SigningKey:
    """The registry's token signing key, created on first use if the file is missing."""
    global _key
    if _key is None:
        with _key_lock:
            if _key is None:
                _key = _load_or_create(Path(settings.HARBORPY_TOKEN_KEY))
    return _key


def _load_or_create(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        pem = _create(path)
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise RuntimeError(f"{path} does not hold an RSA private key")
    public = private.public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(private, public, hashlib.sha256(der).hexdigest()[:32])


def _create(path: Path) -> bytes:
    """Write a new key; when two processes race, the first file wins and both read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(partial, path)  # fails if another process got there first
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return path.read_bytes()


def scope_parse(text: str) -> Scope:
    """One ``scope`` parameter: ``repository:lib/app:pull,push`` or ``registry:catalog:*``."""
    match = SCOPE.match(text)
    if match is None:
        raise CredentialsInvalid(f"invalid scope {text!r}")
    kind, name, actions = match.groups()
    return Scope(kind, name, tuple(dict.fromkeys(a for a in actions.split(",") if a)))


def token_issue(*, principal: Principal, scopes: list[Scope], service: str) -> dict:
    """A signed token for ``principal``: each scope cut down to what it may do.

    Unknown and private repositories give an empty grant, exactly alike.
    """
    if service != settings.HARBORPY_TOKEN_SERVICE:
        raise ServiceUnknown(
            f"this token service issues tokens for {settings.HARBORPY_TOKEN_SERVICE!r}"
        )
    access = []
    for scope in scopes:
        resource = Resource(scope.type, scope.name)
        granted = [a for a in scope.actions if authorize_scope(principal, resource, a).allowed]
        access.append({"type": scope.type, "name": scope.name, "actions": granted})
    now = int(time.time())
    lifetime = settings.HARBORPY_TOKEN_EXPIRY
    claims = {
        "iss": settings.HARBORPY_TOKEN_ISSUER,
        "sub": principal.subject,
        "aud": service,
        "exp": now + lifetime,
        "nbf": now - 1,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "access": access,
        "kind": principal.kind.value,
    }
    key = signing_key()
    token = jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return {"token": token, "access_token": token, "expires_in": lifetime, "issued_at": issued}


# Tokens verified by this process, by their text: a client sends the same token for
# every request of a push or pull, and checking an RSA signature costs ~0.1 ms.
_verified: dict[str, tuple[float, Kind, str | None, frozenset[tuple[str, str, str]]]] = {}
_VERIFIED_MAX = 4096


def token_verify(token: str) -> Principal:
    """The principal a bearer token stands for; CredentialsInvalid unless ours, current, for us."""
    known = _verified.get(token)
    if known is not None and known[0] > time.time():
        return Principal(kind=known[1], name=known[2], token_access=known[3])
    principal, expires = _token_check(token)
    if len(_verified) >= _VERIFIED_MAX:
        now = time.time()
        for stale in [t for t, v in list(_verified.items()) if v[0] <= now] or list(_verified):
            _verified.pop(stale, None)
    assert principal.token_access is not None
    _verified[token] = (expires, principal.kind, principal.name, principal.token_access)
    return principal


def _token_check(token: str) -> tuple[Principal, float]:
    key = signing_key()
    try:
        claims = jwt.decode(
            token,
            key.public,
            algorithms=[ALGORITHM],
            audience=settings.HARBORPY_TOKEN_SERVICE,
            issuer=settings.HARBORPY_TOKEN_ISSUER,
            options={"require": ["exp", "iat", "aud", "iss", "access"]},
            leeway=LEEWAY,
        )
    except jwt.PyJWTError as error:
        raise CredentialsInvalid(f"invalid token: {error}") from None
    access = set()
    for entry in claims.get("access") or ():
        if not isinstance(entry, dict):
            raise CredentialsInvalid("invalid token: malformed access")
        for action in entry.get("actions") or ():
            access.add((str(entry.get("type")), str(entry.get("name")), str(action)))
    sub = claims.get("sub") or None
    try:
        kind = Kind.ANONYMOUS if sub is None else Kind(claims.get("kind", Kind.USER))
    except ValueError:
        raise CredentialsInvalid("invalid token: unknown principal kind") from None
    principal = Principal(kind=kind, name=sub, token_access=frozenset(access))
    return principal, float(claims["exp"]) + LEEWAY
