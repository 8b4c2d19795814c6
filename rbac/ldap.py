"""The directory login backend: django-auth-ldap, kept away from local accounts.

A directory entry whose name equals a local account's, ignoring case (one with
a password of its own here, such as the system admin ``admin``), must not log in as, take over
or demote that account.  Accounts the directory or SSO created have no usable
local password and stay the directory's.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django_auth_ldap.backend import LDAPBackend


class DirectoryBackend(LDAPBackend):
    def authenticate(self, request: Any, username: Any = None, password: Any = None, **kwargs: Any):
        if username and _is_local(username):
            return None  # ModelBackend decides, with the local password
        return super().authenticate(request, username=username, password=password, **kwargs)


def _is_local(username: str) -> bool:
    return (
        get_user_model()
        .objects.filter(username__iexact=username)
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .exists()
    )
