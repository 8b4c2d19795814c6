"""The boto3 S3 client and the plain object requests the rest of the backend builds on.

Every store gets its own client, made from one process-wide boto3 session;
``list_objects``, ``head_size``, ``put_object`` and ``delete_keys`` wrap the
single-object and bulk requests, and ``error_code``/``MISSING_CODES`` tell a
missing object from a real failure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..errors import StorageError

DELETE_BATCH = 1000
"""S3's most keys per DeleteObjects request."""

MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
"""Error codes S3-compatible servers use for "no such object"."""

_SESSION_LOCK = threading.Lock()
_SESSION: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session for every store, made on first use (call with ``_SESSION_LOCK`` held).

    Clients of one session share its parsed service models, which makes
    opening a store about three times faster; the credentials are per client.
    """
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


def connect(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None,
    secret_key: str | None,
) -> Any:
    """A new S3 client on the shared session.

    Without ``access_key``/``secret_key`` the credentials come from the usual
    AWS sources.  With an ``endpoint_url`` (a non-AWS server) requests use
    path-style addressing and send checksums only where S3 requires them,
    which every S3-compatible server understands.
    """
    options: dict[str, Any] = {"signature_version": "s3v4", "retries": {"mode": "standard"}}
    if endpoint_url:
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    with _SESSION_LOCK:  # a boto3 session is not thread-safe; its clients are
        session = _shared_session()
        return session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or session.region_name or "us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(**options),
        )


def error_code(exc: ClientError) -> str:
    """The S3 error code of a failed request (``"404"`` for a HEAD that found nothing)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def list_objects(client: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """(full key, size) of every object whose key starts with the full ``prefix``."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            yield item["Key"], int(item["Size"])


def head_size(client: Any, bucket: str, key: str) -> int | None:
    """Size of the object under the full ``key``, or None when there is none."""
    try:
        response = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            return None
        raise
    return int(response["ContentLength"])


def put_object(client: Any, bucket: str, key: str, data: bytes | bytearray) -> None:
    """Store ``data`` as the object ``key`` with one PUT."""
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))


def delete_keys(client: Any, bucket: str, keys: Iterable[str]) -> None:
    """Delete objects by full key, up to 1000 per request; missing keys are fine."""
    batch: list[dict[str, str]] = []
    for key in keys:
        batch.append({"Key": key})
        if len(batch) == DELETE_BATCH:
            _delete_batch(client, bucket, batch)
            batch = []
    if batch:
        _delete_batch(client, bucket, batch)


def _delete_batch(client: Any, bucket: str, batch: list[dict[str, str]]) -> None:
    response = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    errors = [e for e in response.get("Errors", ()) if e.get("Code") not in MISSING_CODES]
    if errors:
        first = errors[0]
        raise StorageError(
            f"could not delete {len(errors)} object(s), first {first.get('Key')!r}: "
            f"{first.get('Code')} {first.get('Message', '')}".rstrip()
        )
