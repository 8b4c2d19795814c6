"""The Docker engine's ``registry-mirrors`` pointed at a ``library`` proxy cache.

dockerd asks the mirror for ``library/<name>`` and, on a miss, falls back to Docker Hub.
Nothing may leave the machine, so dockerd, harborpy (embedded: SQLite and local disk) and
the upstream (Debian's docker-registry) all run in a private network namespace that has
only a loopback interface: a fallback to the Hub fails at once.  The docker CLI outside
talks to the daemon over its unix socket, which crosses namespaces; HTTP checks run
inside through nsenter.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fixtures.clients import SampleImages, dockerd_options
from tests.fixtures.server import ADMIN, ADMIN_PASSWORD
from tests.fixtures.tools import require_tool

UPSTREAM = "127.0.0.1:5001"
MIRROR = "127.0.0.1:5002"
TTL = 1  # seconds a cached tag is fresh: the test outlives it, so re-checks happen


@dataclass
class Namespace:
    """A network namespace held open by a sleeping process, and what runs inside it."""

    holder: subprocess.Popen
    home: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def argv(self, *command: str) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", *command]

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*command), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self, name: str, *command: str, env: dict[str, str] | None = None) -> Path:
        log = self.home / f"{name}.log"
        with open(log, "wb") as out:
            self.processes.append(
                subprocess.Popen(
                    self.argv(*command),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
            )
        return log

    def curl(self, method: str, url: str, body: object = None) -> tuple[int, str]:
        verb = ["-I"] if method == "HEAD" else ["-X", method]
        command = ["curl", "-s", "-u", ":".join(ADMIN), *verb, "-w", "\n%{http_code}"]
        if body is not None:
            command += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        result = self.run(*command, url, timeout=60)
        text, _, status = result.stdout.rpartition("\n")
        return int(status or 0), text


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(check, what: str, log: Path | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"{what} did not come up within {timeout:g} s\n{detail}")


@pytest.fixture(scope="module")
def namespace() -> Iterator[Namespace]:
    for tool in ("unshare", "nsenter", "ip", "curl", "dockerd", "docker", "docker-registry"):
        require_tool(tool)
    home = Path(tempfile.mkdtemp(prefix="hp-mirror-"))
    holder = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"],
        stdin=subprocess.DEVNULL,
    )
    space = Namespace(holder, home)
    try:
        _wait(lambda: "UP" in space.run("ip", "-o", "link", "show", "lo").stdout, "loopback")
        yield space
    finally:
        for process in reversed(space.processes):
            _stop(process)
        _stop(holder)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def mirror(namespace: Namespace, sample_images: SampleImages) -> Namespace:
    """Upstream docker-registry with two images, harborpy whose ``library`` caches it."""
    home = namespace.home
    (home / "registry.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {home / 'upstream'}\nhttp:\n  addr: {UPSTREAM}\n"
    )
    log = namespace.start("upstream", "docker-registry", "serve", str(home / "registry.yml"))
    _wait(lambda: namespace.curl("GET", f"http://{UPSTREAM}/v2/")[0] == 200, "registry", log)
    copy = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    for source, target, extra in (
        (f"docker-archive:{sample_images.archive}", "mirrortest:1", []),
        (sample_images.oci("multi"), "mirrormulti:1", ["--all"]),
    ):
        result = namespace.run(*copy, *extra, source, f"docker://{UPSTREAM}/{target}")
        assert result.returncode == 0, result.stderr

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("HARBORPY_STORAGE", None)
    env.update(
        HARBORPY_DATA=str(home / "harborpy"),
        HARBORPY_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HARBORPY_PROXY_MANIFEST_TTL=str(TTL),
        HARBORPY_LOG_LEVEL="WARNING",
    )
    serve = [sys.executable, "-m", "harborpy.cli", "serve", "--listen", MIRROR]
    log = namespace.start("harborpy", *serve, "--data", str(home / "harborpy"), env=env)
    _wait(lambda: namespace.curl("GET", f"http://{MIRROR}/v2/")[0] == 200, "harborpy", log)

    api = f"http://{MIRROR}/api/v2.0"
    status, text = namespace.curl(
        "POST", f"{api}/registries", {"name": "upstream", "url": f"http://{UPSTREAM}"}
    )
    assert status == 201, text
    status, text = namespace.curl("GET", f"{api}/registries")
    registry_id = next(r["id"] for r in json.loads(text) if r["name"] == "upstream")
    status, text = namespace.curl("DELETE", f"{api}/projects/library")
    assert status == 200, text
    status, text = namespace.curl(
        "POST",
        f"{api}/projects",
        {"project_name": "library", "registry_id": registry_id, "public": True},
    )
    assert status == 201, text
    return namespace


@pytest.fixture(scope="module")
def docker(mirror: Namespace) -> Iterator[list[str]]:
    """dockerd in the namespace with the mirror configured; yields the CLI's argv prefix."""
    home = mirror.home / "docker"
    home.mkdir()
    (home / "daemon.json").write_text(
        json.dumps({"registry-mirrors": [f"http://{MIRROR}"], "insecure-registries": [MIRROR]})
    )
    sock = home / "docker.sock"
    log = mirror.start("dockerd", "dockerd", *dockerd_options(home, home / "daemon.json", sock))
    (home / "cli").mkdir()
    cli = ["docker", "--host", f"unix://{sock}", "--config", str(home / "cli")]

    def ready() -> bool:
        return subprocess.run([*cli, "info"], capture_output=True, timeout=30).returncode == 0

    _wait(ready, "dockerd", log)
    yield cli


def docker_run(cli: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=300)


def test_docker_pulls_through_the_mirror(
    docker: list[str], mirror: Namespace, sample_images: SampleImages
) -> None:
    api = f"http://{MIRROR}/api/v2.0/projects/library/repositories"

    pulled = docker_run(docker, "pull", "mirrortest:1")
    assert pulled.returncode == 0, pulled.stderr
    inspect = docker_run(docker, "image", "inspect", "--format", "{{.Id}}", "mirrortest:1")
    assert inspect.stdout.strip() == sample_images.single.config_digest
    status, text = mirror.curl("GET", f"{api}/mirrortest/artifacts")
    assert status == 200, text
    assert [a["digest"] for a in json.loads(text)]  # the cache holds it now

    # A multi-arch index: docker takes its own platform, the only child the cache fetches.
    pulled = docker_run(docker, "pull", "mirrormulti:1")
    assert pulled.returncode == 0, pulled.stderr
    arch = docker_run(docker, "version", "--format", "{{.Server.Arch}}").stdout.strip()
    mine = sample_images.multi.child(arch).digest
    others = [digest for digest in sample_images.multi.child_digests if digest != mine]

    # The upstream goes away: what was pulled comes from the cache, tags past their TTL too.
    mirror.processes[0].terminate()
    mirror.processes[0].wait(timeout=20)
    assert mirror.curl("GET", f"http://{UPSTREAM}/v2/")[0] == 0  # really gone
    time.sleep(TTL + 0.5)
    removed = docker_run(docker, "rmi", "mirrortest:1")
    assert removed.returncode == 0, removed.stderr
    again = docker_run(docker, "pull", "mirrortest:1")
    assert again.returncode == 0, again.stderr
    child = f"http://{MIRROR}/v2/library/mirrormulti/manifests"
    assert mirror.curl("HEAD", f"{child}/{mine}")[0] == 200
    for digest in others:  # never asked for, never fetched: not here without the upstream
        assert mirror.curl("HEAD", f"{child}/{digest}")[0] == 503, digest

    # Not cached and no upstream: the mirror says so, the daemon's fallback to the Hub fails
    # (the namespace has no route out), and the pull fails.
    missing = docker_run(docker, "pull", "notthere:1")
    assert missing.returncode != 0
