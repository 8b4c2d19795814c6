"""The quick start's single node runs background jobs itself: no Redis, no separate worker.

``harborpy serve`` without REDIS_URL starts a Celery worker (with beat) over the filesystem
queue in its data folder, starts it again if it dies, and stops it when it stops.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.distribution.helpers import digest_of, push_image
from tests.fixtures import authed
from tests.fixtures.server import start_server


def celery_processes(data: Path) -> list[int]:
    """Pids of Celery workers whose schedule file is in ``data``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"celery" in command and any(str(data).encode() in part for part in command):
            found.append(int(entry.name))
    return found


def test_a_replication_runs_on_the_embedded_worker(tmp_path: Path, reference_registry: str) -> None:
    data = tmp_path / "var"
    server = start_server(data, embedded=True)
    try:
        image = push_image(server, "library/app", "v1")
        api = f"{server.url}/api/v2.0"
        created = authed.post(
            f"{api}/registries", json={"name": "ref", "url": f"http://{reference_registry}"}
        )
        assert created.status_code == 201, created.text
        registry_id = int(created.headers["Location"].rsplit("/", 1)[1])
        policy = authed.post(
            f"{api}/replication/policies",
            json={
                "name": "out",
                "dest_registry": {"id": registry_id},
                "filters": [{"type": "name", "value": "library/app"}],
            },
        )
        assert policy.status_code == 201, policy.text
        policy_id = int(policy.headers["Location"].rsplit("/", 1)[1])
        started = authed.post(f"{api}/replication/executions", json={"policy_id": policy_id})
        assert started.status_code == 201, started.text
        execution = started.headers["Location"].rsplit("/", 1)[1]

        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = authed.get(f"{api}/replication/executions/{execution}").json()["status"]
            if status in ("succeeded", "failed"):
                break
            time.sleep(0.3)
        assert status == "succeeded", status
        copied = authed.get(
            f"http://{reference_registry}/v2/library/app/manifests/v1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            auth=None,
        )
        assert digest_of(copied.content) == image.digest
        first = celery_processes(data)
        assert first, "the worker runs beside the server"

        # A worker that dies is started again by the server's watchdog.
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            again = [p for p in celery_processes(data) if p not in first]
            if again:
                break
            time.sleep(0.3)
        assert again, "the worker was not started again"
    finally:
        server.stop()
    deadline = time.monotonic() + 30
    while celery_processes(data) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not celery_processes(data), "the worker stops with the server"
