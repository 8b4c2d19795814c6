"""Domain errors of the registry.

Services raise these; the /v2/ layer maps each to the OCI error code and HTTP
status in one table (``distribution.errors``).  ``detail`` is extra JSON the
spec lets an error carry.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base of every error a /v2/ request can end with.

    ``status`` overrides the table's HTTP status where the same code is answered
    differently (MANIFEST_UNKNOWN is 404 on a pull, 400 for an index's missing child).
    """

    def __init__(self, message: str, detail: Any = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.status = status


class NameInvalid(RegistryError):
    """The repository name breaks the spec's grammar."""


class NameUnknown(RegistryError):
    """No such repository."""


class TagInvalid(RegistryError):
    """The tag breaks the spec's grammar."""


class DigestInvalid(RegistryError):
    """A malformed digest, an unsupported algorithm, or content that does not match it."""


class BlobUnknown(RegistryError):
    """The repository has no blob with this digest."""


class UploadUnknown(RegistryError):
    """No upload session with this id in this repository."""


class UploadInvalid(RegistryError):
    """The upload request is malformed or the client went away mid-body."""


class RangeInvalid(RegistryError):
    """A chunk does not start where the upload ends; carries the upload to report its range."""

    def __init__(self, message: str, *, upload: Any) -> None:
        super().__init__(message)
        self.upload = upload


class BlobRangeInvalid(RegistryError):
    """A Range on a blob GET lies outside the blob; carries the blob size."""

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class SizeInvalid(RegistryError):
    """Content length disagrees with what the request or a descriptor says."""


class ManifestInvalid(RegistryError):
    """The manifest is malformed, unsupported, or inconsistent with its reference."""


class ManifestTooLarge(RegistryError):
    """The manifest body is bigger than the configured limit."""


class ManifestUnknown(RegistryError):
    """No manifest under this tag or digest (or none in a media type the client accepts)."""


class ManifestReferenced(RegistryError):
    """The manifest is a child of an index in the repository and cannot go alone."""


class TagImmutable(RegistryError):
    """An enabled immutability rule covers the tag: it cannot be moved or deleted."""


class ManifestBlobUnknown(RegistryError):
    """A manifest refers to blobs the repository does not have."""


class PaginationInvalid(RegistryError):
    """`n` or `last` of a list request is unusable."""


class RouteUnknown(RegistryError):
    """The path is under /v2/ but names no endpoint of the API."""


class InternalError(RegistryError):
    """Something failed on the server's side; details are in its log."""


class Denied(RegistryError):
    """The principal may not do this."""


class Unauthorized(RegistryError):
    """No credentials, bad credentials, or a token without the access the request needs.

    ``challenge`` is the WWW-Authenticate value that tells the client where to
    get a token and for which scope.
    """

    def __init__(self, message: str, *, challenge: str) -> None:
        super().__init__(message)
        self.challenge = challenge


class TooManyRequests(RegistryError):
    """Too many failed logins from this address for this account."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(RegistryError):
    """The push would take the project over its storage quota."""


class Unsupported(RegistryError):
    """The operation is not supported here."""


class Unavailable(RegistryError):
    """The registry cannot do this right now; the client should retry after ``retry_after`` s."""

    def __init__(self, message: str, *, retry_after: int, detail: Any = None) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


# --- errors of the REST API's writes: not /v2/ errors, no OCI code (api.errors maps them) ---


class TagExists(Exception):
    """The repository has a tag of that name already (on this or another manifest)."""


class LabelExists(Exception):
    """A label of that name exists already in the same scope (global, or the project)."""


class LabelUnknown(Exception):
    """No such label, or not on this artifact."""


class LabelInvalid(Exception):
    """The label may not go there: a project's label on another project's artifact."""


class RuleInvalid(Exception):
    """An immutability or retention rule is malformed (a bad glob, an unknown action)."""


class ImmutableRuleUnknown(Exception):
    """No such immutability rule in this project."""


class ArtifactLabelExists(Exception):
    """The artifact carries the label already."""


class GCBusy(Exception):
    """A garbage collection is already pending or running: one at a time."""


class ScheduleInvalid(Exception):
    """A schedule cannot be used: an unknown type, a cron expression that does not parse."""
