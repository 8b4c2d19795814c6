"""The ``harborpy`` command.

    harborpy serve [--listen HOST:PORT] [--data DIR] [--workers N] [--threads N]
    harborpy <django management command> [args...]   (migrate, check, createsuperuser, ...)

``serve`` applies migrations and runs the registry under gunicorn: a
complete single node with SQLite and blobs under the data folder unless
DATABASE_URL / HARBORPY_STORAGE say otherwise.  Without REDIS_URL it also
runs the background jobs itself: one Celery worker, with the periodic
schedules (beat) inside it, over the filesystem queue under the data folder
(``HARBORPY_EMBEDDED_WORKER=false`` leaves that to a worker of your own).
With REDIS_URL, workers and beat run as their own services.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harborpy.settings")
    if argv and argv[0] == "serve":
        serve(argv[1:])
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(["harborpy", *argv])


def default_workers() -> int:
    """One server process per CPU, at most 4: Python code, not I/O, limits a process."""
    return max(1, min(4, os.cpu_count() or 1))


def serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="harborpy serve", description="Run the registry.")
    parser.add_argument(
        "--listen",
        default=os.environ.get("HARBORPY_LISTEN", "127.0.0.1:5000"),
        help="address to serve on (default 127.0.0.1:5000, env HARBORPY_LISTEN)",
    )
    parser.add_argument(
        "--data",
        default=os.environ.get("HARBORPY_DATA", "var"),
        help="folder for all local state (default ./var, env HARBORPY_DATA)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("HARBORPY_WORKERS", "0")) or default_workers(),
        help="server processes (default: one per CPU, at most 4; env HARBORPY_WORKERS); "
        "each has --threads threads",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("HARBORPY_THREADS", "16")),
        help="threads per process (default 16, env HARBORPY_THREADS)",
    )
    args = parser.parse_args(argv)
    os.environ["HARBORPY_DATA"] = os.path.abspath(args.data)
    os.makedirs(os.environ["HARBORPY_DATA"], exist_ok=True)
    # Migrations and the first-start admin run in a child process: the server's master
    # process never imports Django, so it stays small and its forked workers start clean.
    prepare = subprocess.run([sys.executable, "-m", "harborpy.cli", "bootstrap"])
    if prepare.returncode != 0:
        sys.exit(prepare.returncode)
    from .server import run_server

    print(
        f"harborpy serving on http://{args.listen} (data in {os.environ['HARBORPY_DATA']})",
        flush=True,
    )
    worker = EmbeddedWorker.wanted()
    try:
        run_server(listen=args.listen, workers=args.workers, threads=args.threads)
    finally:
        if worker is not None:
            worker.stop()


class EmbeddedWorker:
    """The single node's job runner: a Celery worker with beat, when there is no Redis.

    A watchdog thread starts it again if it exits while the server runs, so jobs
    do not wait for ever behind a worker that died.
    """

    CHECK_EVERY = 5.0  # seconds between looks at the worker

    def __init__(self) -> None:
        schedule = os.path.join(os.environ["HARBORPY_DATA"], "celerybeat-schedule")
        self.command = [sys.executable, "-m", "celery", "-A", "harborpy", "worker", "--beat"]
        self.command += ["--schedule", schedule, "--pool", "threads", "--concurrency", "2"]
        self.command += ["--loglevel", "WARNING", "--without-mingle", "--without-gossip"]
        self.stopping = threading.Event()
        self.process = self._spawn()
        self.watchdog = threading.Thread(target=self._watch, name="worker-watchdog", daemon=True)
        self.watchdog.start()

    @classmethod
    def wanted(cls) -> EmbeddedWorker | None:
        wanted = os.environ.get("HARBORPY_EMBEDDED_WORKER", "true").strip().lower()
        if os.environ.get("REDIS_URL") or wanted in ("0", "false", "no", "off"):
            return None
        return cls()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.command, stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        while not self.stopping.wait(self.CHECK_EVERY):
            code = self.process.poll()
            if code is not None and not self.stopping.is_set():
                print(f"harborpy: the job worker exited ({code}); starting it again", flush=True)
                self.process = self._spawn()

    def stop(self) -> None:
        self.stopping.set()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


if __name__ == "__main__":
    main()
