"""Domain errors of the audit log's rotation; the REST API maps them in its one handler."""

from __future__ import annotations


class PurgeInvalid(Exception):
    """A purge or its schedule was asked for with unusable parameters (a 400)."""


class PurgeBusy(Exception):
    """A purge is pending or running: one runs at a time (a 409)."""
