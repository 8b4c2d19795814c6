"""The one function that decides access, and the vocabulary it speaks.

Every /v2/ request is routed through ``authorize`` before any work is done;
projects, role bindings and robots (the permission table) plug in here, so
access is decided in this one place.  Today's policy: an open registry in
which the operator's read-only switch refuses every write.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings


class Action(StrEnum):
    """What a request does to a resource (the token spec's action names)."""

    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    LIST = "*"  # enumerate the registry (_catalog)


WRITE_ACTIONS = frozenset({Action.PUSH, Action.DELETE})


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user name, or nobody (anonymous)."""

    username: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.username is None


ANONYMOUS = Principal()


@dataclass(frozen=True)
class Resource:
    """What is asked for, in the token spec's terms: ``repository:library/app``."""

    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def principal_from_request(request) -> Principal:
    """The principal behind a request: its authenticated Django user, else anonymous."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Principal(username=user.get_username())
    return ANONYMOUS


def authorize(principal: Principal, action: Action, resource: Resource) -> Decision:
    """Decide whether ``principal`` may do ``action`` on ``resource``."""
    if action in WRITE_ACTIONS and settings.HARBORPY_READ_ONLY:
        return Decision(False, "the registry is in read-only mode")
    return Decision(True)
