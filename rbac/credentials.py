"""From a request's credentials to a Principal: Basic, bearer token, session, or nobody.

Basic credentials are checked once through the login service (throttled,
audited, Argon2) and then remembered for a short while in this process, keyed
by an HMAC of the pair, so a client that sends Basic on every request does not
pay for a password hash each time.  The account itself is re-read on every
request: a disabled user or robot, an expired robot, a changed password or a
rotated secret stops working at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from .exceptions import CredentialsInvalid
from .models import ROBOT_PREFIX, CliSecret, Robot
from .policy import Kind, Principal
from .robots import robot_authenticate
from .services import login_check_throttle, user_authenticate
from .tokens import token_verify

REMEMBER_SECONDS = 60
REMEMBER_MAX = 4096


@dataclass(frozen=True)
class _Remembered:
    until: float
    kind: Kind
    pk: int
    fingerprint: str


_remembered: dict[bytes, _Remembered] = {}
_remembered_lock = threading.Lock()


def principal_for_user(user) -> Principal:
    return Principal(
        kind=Kind.USER,
        name=user.get_username(),
        user_id=user.pk,
        is_admin=bool(user.is_superuser),
    )


def principal_for_robot(robot: Robot) -> Principal:
    return Principal(
        kind=Kind.ROBOT,
        name=robot.name,
        robot_id=robot.pk,
        robot_permissions=tuple(robot.permissions),
    )


def client_address(request) -> str:
    """The client's address: the peer, or behind a trusted proxy the address it forwards.

    With HARBORPY_TRUSTED_PROXY_HOPS = N, the N-th address from the right of
    X-Forwarded-For is the client (each proxy appends the peer it saw); the
    entries further left are whatever the client sent and are ignored.
    """
    hops = settings.HARBORPY_TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def principal_from_request(request, *, sessions: bool = False) -> Principal:
    """Who sent ``request``.

    ``Authorization: Basic`` (password, CLI secret or robot secret) and
    ``Bearer`` (a token of ours) are always read; the session cookie only when
    ``sessions`` (console and API, never /v2/, which is CSRF-exempt).  No
    credentials: anonymous.  Bad credentials raise LoginFailed,
    LoginThrottled or CredentialsInvalid; they never fall back to anonymous.
    """
    cached = getattr(request, "_harborpy_principal", None)
    if cached is not None:
        return cached
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        name, secret = basic_decode(value)
        principal = authenticate_basic(name, secret, client_address(request))
    elif scheme == "bearer":
        principal = token_verify(value.strip())
    elif header:
        raise CredentialsInvalid(f"unsupported authorization scheme {scheme!r}")
    elif sessions and getattr(request, "user", None) is not None and request.user.is_authenticated:
        principal = principal_for_user(request.user)
    else:
        principal = Principal()  # a fresh one: it caches permissions for this request only
    request._harborpy_principal = principal
    return principal


def basic_decode(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialsInvalid("malformed Basic credentials") from None
    name, sep, secret = decoded.partition(":")
    if not sep or not name:
        raise CredentialsInvalid("malformed Basic credentials")
    return name, secret


def authenticate_basic(name: str, secret: str, source: str) -> Principal:
    """The principal a name and password/secret belong to (LoginFailed if none)."""
    key = hmac.new(settings.SECRET_KEY.encode(), f"{name}\0{secret}".encode(), "sha256").digest()
    remembered = _remembered.get(key)
    if remembered is not None and remembered.until > time.monotonic():
        login_check_throttle(name, source)
        principal = _recheck(remembered)
        if principal is not None:
            return principal
    if name.startswith(ROBOT_PREFIX):
        robot = robot_authenticate(name=name, secret=secret, source=source)
        principal, fingerprint = principal_for_robot(robot), robot.secret_hash
        kind, pk = Kind.ROBOT, robot.pk
    else:
        user = user_authenticate(username=name, password=secret, source=source)
        principal = principal_for_user(user)
        fingerprint = _user_fingerprint(user.pk, user.password)
        kind, pk = Kind.USER, user.pk
    with _remembered_lock:
        if len(_remembered) >= REMEMBER_MAX:
            now = time.monotonic()
            for stale in [k for k, v in _remembered.items() if v.until <= now] or list(_remembered):
                del _remembered[stale]
        _remembered[key] = _Remembered(time.monotonic() + REMEMBER_SECONDS, kind, pk, fingerprint)
    return principal


def _recheck(remembered: _Remembered) -> Principal | None:
    """The principal again if its account still accepts these credentials; None to re-verify."""
    if remembered.kind is Kind.ROBOT:
        robot = Robot.objects.filter(pk=remembered.pk).first()
        if robot is None or robot.secret_hash != remembered.fingerprint:
            return None
        if robot.disabled or (robot.expires_at is not None and robot.expires_at <= timezone.now()):
            return None  # the full check refuses it, with the reason in the audit log
        return principal_for_robot(robot)
    user = (
        get_user_model()
        .objects.select_related("cli_secret")
        .filter(pk=remembered.pk, is_active=True)
        .first()
    )
    if user is None:
        return None
    try:
        digest = user.cli_secret.digest
    except CliSecret.DoesNotExist:
        digest = ""
    if _fingerprint(user.password, digest) != remembered.fingerprint:
        return None
    return principal_for_user(user)


def _user_fingerprint(pk: int, password: str) -> str:
    digest = CliSecret.objects.filter(user_id=pk).values_list("digest", flat=True).first() or ""
    return _fingerprint(password, digest)


def _fingerprint(password: str, cli_digest: str) -> str:
    """Changes when the user's password or CLI secret does."""
    return hashlib.sha256(f"{password}\0{cli_digest}".encode()).hexdigest()
