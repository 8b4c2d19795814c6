"""Replication pieces without a server: names, filters, retries, the sized stream."""

from __future__ import annotations

import pytest

from replication import services
from replication.client import RemoteError, TransientError, _Sized
from replication.models import ReplicationPolicy
from replication.services import _matches, _retrying, destination_name


@pytest.mark.parametrize(
    ("namespace", "source", "expected"),
    [
        ("", "library/app", "library/app"),
        ("prod", "library/app", "prod/app"),
        ("prod", "library/team/app", "prod/team/app"),
        ("prod", "busybox", "prod/busybox"),
        ("prod/", "library/app", "prod/app"),
    ],
)
def test_destination_name(namespace: str, source: str, expected: str) -> None:
    policy = ReplicationPolicy(destination_namespace=namespace)
    assert destination_name(policy, source) == expected


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("**", "library/team/app", True),
        ("library/*", "library/app", True),
        ("library/*", "library/team/app", False),
        ("library/**", "library/team/app", True),
        ("v1.*", "v1.2", True),
        ("v1.*", "v2.0", False),
        ("{a,b}", "b", True),
        ("", "anything", True),
    ],
)
def test_filters(pattern: str, name: str, matches: bool) -> None:
    assert _matches(pattern, name) is matches


def test_transient_errors_are_retried_with_a_bound(monkeypatch) -> None:
    monkeypatch.setattr(services.copier.time, "sleep", lambda seconds: None)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("503")
        return "ok"

    assert _retrying("step", flaky) == "ok" and len(calls) == 3

    def down() -> str:
        calls.append(1)
        raise TransientError("connection refused")

    calls.clear()
    with pytest.raises(TransientError, match="gave up after 3 attempts"):
        _retrying("step", down)
    assert len(calls) == 3

    def refused() -> str:
        calls.append(1)
        raise RemoteError("403", 403)

    calls.clear()
    with pytest.raises(RemoteError):
        _retrying("step", refused)
    assert len(calls) == 1  # not transient: no retry


def test_sized_stream_is_sent_with_content_length() -> None:
    import requests

    body = _Sized(iter([b"ab", b"cd"]), 4)
    prepared = requests.Request("PUT", "http://127.0.0.1/x", data=body).prepare()
    assert prepared.headers["Content-Length"] == "4"
    assert "Transfer-Encoding" not in prepared.headers
