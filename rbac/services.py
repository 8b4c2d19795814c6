"""Identity services: the system admin, and password logins with throttling.

Every way of logging in with a password or a robot secret (the console, Basic
auth on /v2/, the token service) goes through ``login_attempt``, so throttling
and the audit trail of logins live in one place.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction

from audit.services import SYSTEM, Actor, audit_record

from .cli_secrets import cli_secret_matches
from .exceptions import LoginFailed, LoginThrottled
from .models import ROBOT_PREFIX

ADMIN = "admin"


def admin_bootstrap(*, password: str = "") -> str | None:
    """Create the system admin ``admin`` unless it exists.

    Without ``password`` one is generated; it is returned so the caller can show
    it once.  Returns None when the admin existed already (nothing changes).
    """
    User = get_user_model()
    if User.objects.filter(username=ADMIN).exists():
        return None
    generated = None if password else secrets.token_urlsafe(18)
    try:
        with transaction.atomic():
            User.objects.create_superuser(username=ADMIN, email="", password=password or generated)
            audit_record(
                actor=SYSTEM, action="user", resource=f"user:{ADMIN}", detail={"change": "created"}
            )
    except IntegrityError:  # another node created it at the same moment
        return None
    return generated


def user_authenticate(
    *, username: str, password: str, source: str, cli_secret: bool = True
) -> AbstractBaseUser:
    """The user these credentials belong to: a password (local or LDAP) or the CLI secret.

    ``cli_secret=False`` (console logins) accepts passwords only, as Harbor does.

    LoginFailed or LoginThrottled otherwise.
    """
    with login_attempt(username, source):
        user = authenticate(username=username, password=password)
        if user is None and cli_secret:
            # SSO users have no password here: their CLI secret stands in for one.
            candidate = get_user_model().objects.filter(username=username).first()
            if candidate is not None and cli_secret_matches(user=candidate, secret=password):
                user = candidate
        if user is None or not user.is_active:
            raise LoginFailed("wrong user name or password")
        return user


class _Attempt:
    """A login being tried; ``reason`` says why a failure failed, for the audit log."""

    reason = "failed"


@contextmanager
def login_attempt(name: str, source: str) -> Iterator[_Attempt]:
    """Throttle and audit one login by ``name`` from ``source``.

    Failures (LoginFailed raised in the block) are counted per account and
    client address: after HARBORPY_LOGIN_MAX_FAILURES of them, logins from that
    address to that account are refused, even with the right credentials, until
    HARBORPY_LOGIN_LOCKOUT seconds pass without another failure.  Every attempt
    is audited.
    """
    actor = Actor(name or "-", source)
    key = _failures_key(name, source)
    login_check_throttle(name, source)
    attempt = _Attempt()
    try:
        yield attempt
    except LoginFailed:
        cache.set(key, cache.get(key, 0) + 1, timeout=settings.HARBORPY_LOGIN_LOCKOUT)
        _audit_login(actor, name, attempt.reason)
        raise
    cache.delete(key)
    _audit_login(actor, name, "ok")


def login_check_throttle(name: str, source: str) -> None:
    """LoginThrottled if logins by ``name`` from ``source`` are refused right now.

    Also for credentials verified earlier and remembered: a lockout holds for them too.
    A refused attempt is audited.
    """
    if cache.get(_failures_key(name, source), 0) >= settings.HARBORPY_LOGIN_MAX_FAILURES:
        _audit_login(Actor(name or "-", source), name, "throttled")
        raise LoginThrottled(settings.HARBORPY_LOGIN_LOCKOUT)


def _failures_key(name: str, source: str) -> str:
    return f"harborpy:login-failures:{name}:{source}"


def _audit_login(actor: Actor, name: str, result: str) -> None:
    resource = name if name.startswith(ROBOT_PREFIX) else f"user:{name}"
    audit_record(actor=actor, action="login", resource=resource, detail={"result": result})
