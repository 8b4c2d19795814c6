"""Benchmark the proxy cache: a blob and a manifest pulled straight from the upstream, through
a cold cache (streamed while stored) and from a warm one; the server's peak memory.

    .venv/bin/python scripts/bench_proxy.py [--blob-mib 256] [--requests 300]

The upstream is Debian's docker-registry; harborpy runs on PostgreSQL (database hp_bench_proxy
on 127.0.0.1, recreated) with Redis db 7 as its cache, as a production node would.  Prints a
Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

PASSWORD = "bench-proxy-admin"
ADMIN = ("admin", PASSWORD)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            sys.exit(f"{url} exited")
        try:
            if requests.get(url + "/v2/", timeout=2).status_code in (200, 401):
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not start")


def push_blob(url: str, name: str, data_path: Path | bytes, auth=None) -> str:
    digest = "sha256:" + (
        hashlib.file_digest(open(data_path, "rb"), "sha256").hexdigest()  # noqa: SIM115
        if isinstance(data_path, Path)
        else hashlib.sha256(data_path).hexdigest()
    )
    start = requests.post(f"{url}/v2/{name}/blobs/uploads/", auth=auth)
    location = start.headers["Location"]
    location = location if location.startswith("http") else url + location
    body = open(data_path, "rb") if isinstance(data_path, Path) else data_path  # noqa: SIM115
    done = requests.put(
        location,
        params={"digest": digest},
        data=body,
        auth=auth,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    return digest


def timed_get(url: str, auth=None, headers=None) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    with requests.get(url, auth=auth, headers=headers, stream=True) as response:
        assert response.status_code == 200, response.text
        for chunk in response.iter_content(1 << 20):
            total += len(chunk)
    return time.perf_counter() - start, total


def peak_rss_mib(pid: int) -> float:
    """Largest peak RSS among the server process and its children (gunicorn workers)."""
    pids = [pid] + [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    peak = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blob-mib", type=int, default=256)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hp-bench-proxy-"))
    processes: list[subprocess.Popen] = []
    try:
        # the upstream
        up_port = free_port()
        (work / "r.yml").write_text(
            "version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"
            f"storage:\n  filesystem: {{rootdirectory: {work / 'upstream'}}}\n"
            f'http: {{addr: "127.0.0.1:{up_port}"}}\n'
        )
        processes.append(
            subprocess.Popen(
                ["docker-registry", "serve", str(work / "r.yml")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        upstream = f"http://127.0.0.1:{up_port}"
        wait_up(upstream, processes[-1])
        # harborpy on PostgreSQL
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-qc",
                "DROP DATABASE IF EXISTS hp_bench_proxy",
                "-c",
                "CREATE DATABASE hp_bench_proxy",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["redis-cli", "-n", "7", "flushdb"], check=True, capture_output=True)
        hp_port = free_port()
        env = dict(
            os.environ,
            HARBORPY_DATA=str(work / "hp"),
            HARBORPY_ADMIN_PASSWORD=PASSWORD,
            DATABASE_URL="postgres://postgres@127.0.0.1/hp_bench_proxy",
            REDIS_URL="redis://127.0.0.1:6379/7",
            HARBORPY_LOG_LEVEL="WARNING",
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harborpy.cli",
                "serve",
                "--listen",
                f"127.0.0.1:{hp_port}",
                "--data",
                str(work / "hp"),
            ],
            env=env,
            stdout=open(work / "hp.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        processes.append(server)
        hp = f"http://127.0.0.1:{hp_port}"
        wait_up(hp, server)
        # seed the upstream: a big layer, a config, a manifest
        big = work / "big.bin"
        with open(big, "wb") as out:
            for _ in range(args.blob_mib):
                out.write(os.urandom(1 << 20))
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        layer = push_blob(upstream, "bench/app", big)
        config_digest = push_blob(upstream, "bench/app", config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer,
                        "size": big.stat().st_size,
                    }
                ],
            }
        ).encode()
        r = requests.put(
            f"{upstream}/v2/bench/app/manifests/v1",
            data=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 201, r.text
        # the proxy project (an ordinary one gets the same image after the cold pull)
        r = requests.post(
            f"{hp}/api/v2.0/registries", auth=ADMIN, json={"name": "up", "url": upstream}
        )
        assert r.status_code == 201, r.text
        rid = next(x["id"] for x in requests.get(f"{hp}/api/v2.0/registries", auth=ADMIN).json())
        r = requests.post(
            f"{hp}/api/v2.0/projects",
            auth=ADMIN,
            json={"project_name": "cache", "registry_id": rid, "public": True},
        )
        assert r.status_code == 201, r.text
        rows = []
        mib = big.stat().st_size / (1 << 20)
        rss_before = peak_rss_mib(server.pid)

        def blob_row(what: str, url: str, runs: int) -> None:
            times = [timed_get(url, auth=ADMIN)[0] for _ in range(runs)]
            best = min(times)
            rows.append((what, f"{best:.2f} s", f"{mib / best:.0f} MiB/s"))

        blob_row(
            "blob, upstream direct (docker-registry)", f"{upstream}/v2/bench/app/blobs/{layer}", 3
        )
        # cold: the first read through the proxy streams while it stores
        requests.get(
            f"{hp}/v2/cache/bench/app/manifests/v1", auth=ADMIN, headers={"Accept": OCI_MANIFEST}
        )
        seconds, _ = timed_get(f"{hp}/v2/cache/bench/app/blobs/{layer}", auth=ADMIN)
        rows.append(
            (
                "blob, proxy cold (streamed while stored)",
                f"{seconds:.2f} s",
                f"{mib / seconds:.0f} MiB/s",
            )
        )
        rss_after = peak_rss_mib(server.pid)
        time.sleep(1)
        blob_row("blob, proxy warm (from the cache)", f"{hp}/v2/cache/bench/app/blobs/{layer}", 3)
        push_blob(hp, "library/app", config, auth=ADMIN)
        push_blob(hp, "library/app", big, auth=ADMIN)
        r = requests.put(
            f"{hp}/v2/library/app/manifests/v1",
            data=manifest,
            auth=ADMIN,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 201, r.text
        blob_row("blob, ordinary project", f"{hp}/v2/library/app/blobs/{layer}", 3)

        # manifests by tag, one connection per request as docker does (tokens for harborpy)
        def token(scope: str) -> str:
            return requests.get(
                f"{hp}/service/token", auth=ADMIN, params={"service": "harborpy", "scope": scope}
            ).json()["token"]

        def manifest_rate(what: str, url: str, bearer: str | None) -> None:
            headers = {"Accept": OCI_MANIFEST}
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
            start = time.perf_counter()
            for _ in range(args.requests):
                assert requests.get(url, headers=headers).status_code == 200
            elapsed = time.perf_counter() - start
            rows.append(
                (
                    what,
                    f"{elapsed / args.requests * 1000:.2f} ms",
                    f"{args.requests / elapsed:.0f} req/s",
                )
            )

        manifest_rate(
            "manifest by tag, upstream direct", f"{upstream}/v2/bench/app/manifests/v1", None
        )
        ordinary = (f"{hp}/v2/library/app/manifests/v1", token("repository:library/app:pull"))
        cached = (f"{hp}/v2/cache/bench/app/manifests/v1", token("repository:cache/bench/app:pull"))
        manifest_rate("manifest by tag, ordinary project (warm-up)", *ordinary)
        manifest_rate("manifest by tag, ordinary project", *ordinary)
        manifest_rate("manifest by tag, proxy (fresh in the cache)", *cached)
        processes[0].send_signal(signal.SIGTERM)  # the upstream goes away
        processes[0].wait(timeout=30)
        manifest_rate("manifest by tag, proxy, upstream stopped", *cached)
        print(
            f"Blob {mib:.0f} MiB; {args.requests} sequential manifest GETs, "
            "a new connection each.\n"
        )
        print("| What | Time | Rate |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(
            f"\nPeak RSS of the largest harborpy process: {rss_before:.0f} MiB before the cold "
            f"pull, {rss_after:.0f} MiB after it."
        )
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
