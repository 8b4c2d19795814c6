"""TLS against a real HTTPS server on loopback with a self-signed certificate.

REQUESTS_CA_BUNDLE points at another CA throughout, as on a machine with a corporate
bundle: verification off must still be off, and a refused certificate must be told as
such, at once, not retried as a connection failure.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from replication import services
from replication.client import RegistryClient, TLSError
from replication.models import Direction, RegistryEndpoint, ReplicationPolicy
from replication.services import endpoint_test, execution_create, execution_run, retrying
from tests.fixtures.tools import require_tool


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    require_tool("openssl")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class _Registry(BaseHTTPRequestHandler):
    """Just enough of a registry: an anonymous /v2/ and an empty catalog."""

    def do_GET(self) -> None:
        body = json.dumps({"repositories": []} if "_catalog" in self.path else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def get_request(self) -> Any:
        self.connections += 1  # every attempt, the ones whose handshake fails too
        return super().get_request()


@dataclass
class HttpsServer:
    url: str
    server: _CountingServer

    @property
    def connections(self) -> int:
        return self.server.connections


@pytest.fixture
def https_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsServer]:
    cert, key = self_signed(tmp_path, "127.0.0.1")
    other_ca, _ = self_signed(tmp_path, "another-ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other_ca))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _CountingServer(("127.0.0.1", 0), _Registry)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpsServer(f"https://127.0.0.1:{server.server_address[1]}", server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_verification_off_stays_off_with_a_ca_bundle_set(https_server: HttpsServer) -> None:
    RegistryClient(https_server.url, verify_tls=False).ping()
    assert RegistryClient(https_server.url, verify_tls=False).catalog() == []
    assert https_server.connections >= 1


def test_a_refused_certificate_is_a_tls_error_not_retried(
    https_server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.copier.time, "sleep", lambda seconds: None)
    client = RegistryClient(https_server.url, verify_tls=True)

    with pytest.raises(TLSError, match="certificate verify failed: self-signed certificate"):
        retrying("catalog", client.catalog)

    assert https_server.connections == 1  # tried once: retrying cannot fix a certificate


@pytest.mark.django_db
def test_the_reason_reaches_the_ping_and_the_execution(https_server: HttpsServer) -> None:
    endpoint = RegistryEndpoint.objects.create(name="selfsigned", url=https_server.url)
    with pytest.raises(TLSError, match="certificate verify failed"):
        endpoint_test(endpoint=endpoint)

    policy = ReplicationPolicy.objects.create(
        name="from-selfsigned", endpoint=endpoint, direction=Direction.PULL
    )
    execution = execution_run(execution_id=execution_create(policy=policy).pk)
    assert execution.status == "failed"
    assert "certificate verify failed: self-signed certificate" in execution.error
    assert https_server.connections == 2  # the ping's and the listing's, no retries

    RegistryEndpoint.objects.filter(pk=endpoint.pk).update(verify_tls=False)
    execution = execution_run(execution_id=execution_create(policy=policy).pk)
    assert execution.status == "succeeded", execution.error
