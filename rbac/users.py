"""Local user accounts, as the system admin manages them: create, change, promote, delete.

Every change is audited in the same transaction (action ``user``, resource
``user:<name>``).  Passwords are checked by Django's password validators.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audit.services import Actor, audit_record

from .exceptions import (
    PasswordInvalid,
    PasswordWrong,
    UserChangeDenied,
    UserExists,
    UserInvalid,
)
from .models import ROBOT_PREFIX

USERNAME_MAX = 150
# Characters a name must not hold: Basic credentials split at ":", "$" marks robots.
USERNAME_FORBIDDEN = set(':$,"~#%/\\ \t\n')


def check_username(username: str) -> str:
    """Return ``username`` if a new account may take it, else raise UserInvalid."""
    bad = sorted(USERNAME_FORBIDDEN & set(username))
    if not username or len(username) > USERNAME_MAX or bad:
        raise UserInvalid(
            f"invalid user name {username!r}: 1 to {USERNAME_MAX} characters, none of {bad or ''}"
        )
    if username.startswith(ROBOT_PREFIX):
        raise UserInvalid(f"user names may not start with {ROBOT_PREFIX!r}: robots do")
    return username


def _check_password(password: str, user: Any) -> None:
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise PasswordInvalid([str(m) for m in error.messages]) from None


def user_create(
    *, username: str, password: str, email: str = "", realname: str = "", actor: Actor
) -> Any:
    """Create a local user who logs in with ``password``; UserExists if the name is taken."""
    User = get_user_model()
    check_username(username)
    if User.objects.filter(username__iexact=username).exists():
        raise UserExists(f"user {username!r} exists already")
    user = User(username=username, email=email, first_name=realname)
    _check_password(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            _audit(actor, user, "created", email=email)
    except IntegrityError:
        raise UserExists(f"user {username!r} exists already") from None
    return user


def user_update(
    *, user: Any, email: str | None = None, realname: str | None = None, actor: Actor
) -> Any:
    """Change a user's e-mail address and/or real name."""
    changes = {
        field: value
        for field, value in (("email", email), ("first_name", realname))
        if value is not None and value != getattr(user, field)
    }
    if changes:
        with transaction.atomic():
            for field, value in changes.items():
                setattr(user, field, value)
            user.save(update_fields=list(changes))
            _audit(actor, user, "updated", **changes)
    return user


def user_set_admin(*, user: Any, admin: bool, actor: Actor) -> Any:
    """Make a user a system administrator, or not; nobody changes their own flag."""
    if actor.name == user.get_username():
        raise UserChangeDenied("you cannot change your own administrator flag")
    if bool(user.is_superuser) != admin:
        with transaction.atomic():
            user.is_superuser = user.is_staff = admin
            user.save(update_fields=["is_superuser", "is_staff"])
            _audit(actor, user, "promoted" if admin else "demoted")
    return user


def user_set_active(*, user: Any, active: bool, actor: Actor) -> Any:
    """Enable or disable an account; a disabled user can neither log in nor use a secret."""
    if actor.name == user.get_username():
        raise UserChangeDenied("you cannot disable your own account")
    if bool(user.is_active) != active:
        with transaction.atomic():
            user.is_active = active
            user.save(update_fields=["is_active"])
            _audit(actor, user, "enabled" if active else "disabled")
    return user


def user_set_password(
    *, user: Any, new_password: str, old_password: str | None = None, actor: Actor
) -> None:
    """Set a local user's password; with ``old_password``, only if it is the current one.

    Accounts of LDAP or SSO keep no password here (UserInvalid).  The old
    password stops working at once, for Basic logins too.
    """
    if not user.has_usable_password():
        raise UserInvalid("this account logs in through LDAP or SSO: it has no password here")
    if old_password is not None and not user.check_password(old_password):
        raise PasswordWrong("the old password is not correct")
    if user.check_password(new_password):
        raise PasswordInvalid(["the new password must differ from the old one"])
    _check_password(new_password, user)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        _audit(actor, user, "password changed")


def user_delete(*, user: Any, actor: Actor) -> None:
    """Delete a user with their role bindings; projects they own keep existing, ownerless."""
    if actor.name == user.get_username():
        raise UserChangeDenied("you cannot delete your own account")
    with transaction.atomic():
        _audit(actor, user, "deleted")
        user.delete()


def _audit(actor: Actor, user: Any, change: str, **detail: Any) -> None:
    audit_record(
        actor=actor,
        action="user",
        resource=f"user:{user.get_username()}",
        detail={"change": change, **detail},
    )
