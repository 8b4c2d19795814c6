"""Steps of the OIDC login pipeline (social-auth): the account, its groups, the audit entry.

social-auth runs them where SOCIAL_AUTH_PIPELINE (harborpy/settings.py) lists
them among its own steps: ``account_resolve`` after it has looked for an
account linked to the SSO identity and before it would create one;
``groups_apply`` and ``login_record`` once the account is linked.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from social_core.exceptions import AuthPolicyError

from audit.services import SYSTEM, Actor, audit_record

from .credentials import client_address

GROUP_NAME_MAX = Group._meta.get_field("name").max_length or 150


class SsoRefused(AuthPolicyError):
    """The provider vouched for the person, but harborpy does not let them in; says why.

    social-auth's middleware shows the message on an error page with status 403.
    """

    def __init__(self, backend: Any, message: str) -> None:
        super().__init__(backend, message, stage="pipeline", recovery="contact_administrator")
        self.args = (message,)  # social-auth's generic text would hide the reason


def account_resolve(strategy, backend, details, user=None, **kwargs) -> dict[str, Any] | None:
    """The account this SSO identity logs in to, or the name of the one to create.

    An identity linked before keeps its account.  Otherwise the username claim
    names the account: an existing account without a password (made for SSO,
    or by LDAP) is linked; an account with a local password is never taken
    over, since whoever the provider calls by that name need not be its owner.
    A new account is created only when HARBORPY_OIDC_AUTO_ONBOARD is on.
    """
    source = client_address(strategy.request)
    if user is not None:
        if not user.is_active:
            _refuse(backend, user.get_username(), source, "This account is disabled.")
        return None
    claim = backend.setting("USERNAME_KEY", backend.USERNAME_KEY)
    raw = details.get("username") or ""
    storage = strategy.get_storage(stage="pipeline")
    username = storage.user.clean_username(str(raw))[: storage.user.username_max_length()]
    if not username:
        _refuse(backend, "-", source, f"The provider sent no {claim!r} claim to name you by.")
    existing = get_user_model().objects.filter(username=username).first()
    if existing is None:
        if not settings.HARBORPY_OIDC_AUTO_ONBOARD:
            _refuse(
                backend,
                username,
                source,
                f"There is no account {username!r} here, and accounts are not created at "
                "the first SSO login. Ask an administrator to create yours.",
            )
        return {"username": username}
    if existing.has_usable_password():
        _refuse(
            backend,
            username,
            source,
            f"{username!r} is a local account with a password; it cannot be used through "
            "SSO. Log in with its password, or ask an administrator.",
        )
    if storage.user.get_social_auth_for_user(existing, backend.name).exists():
        _refuse(
            backend,
            username,
            source,
            f"The account {username!r} belongs to another identity at this provider.",
        )
    if not existing.is_active:
        _refuse(backend, username, source, "This account is disabled.")
    return {"user": existing}


def groups_apply(strategy, user=None, groups: list[str] | None = None, **kwargs) -> None:
    """Make the user's groups exactly the groups claim; the admin group makes a system admin.

    ``groups`` is None when no groups claim is configured: nothing changes then.
    Groups are matched by name and created when new, so a role binding given to
    a group reaches everyone the provider puts in it.
    """
    if user is None or groups is None:
        return
    names = [name for name in groups if len(name) <= GROUP_NAME_MAX]
    admin_group = settings.HARBORPY_OIDC_ADMIN_GROUP
    with transaction.atomic():
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in names])
        if not admin_group:
            return
        is_admin = admin_group in names
        if user.is_superuser == is_admin and user.is_staff == is_admin:
            return
        user.is_superuser = user.is_staff = is_admin
        user.save(update_fields=["is_superuser", "is_staff"])
        audit_record(
            actor=Actor(SYSTEM.name, client_address(strategy.request)),
            action="user",
            resource=f"user:{user.get_username()}",
            detail={
                "change": "system admin granted" if is_admin else "system admin revoked",
                "via": f"oidc group {admin_group}",
            },
        )


def login_record(strategy, user=None, is_new: bool = False, **kwargs) -> None:
    """Audit the SSO login that is about to happen."""
    if user is None:
        return
    name = user.get_username()
    _audit(name, client_address(strategy.request), {"result": "ok", "new_account": is_new})


def _refuse(backend: Any, name: str, source: str, message: str) -> NoReturn:
    _audit(name, source, {"result": "refused", "reason": message})
    raise SsoRefused(backend, message)


def _audit(name: str, source: str, detail: dict[str, Any]) -> None:
    audit_record(
        actor=Actor(name, source),
        action="login",
        resource=f"user:{name}",
        detail={**detail, "method": "oidc"},
    )
