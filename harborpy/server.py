"""gunicorn, embedded: the production WSGI server behind ``harborpy serve``."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

from gunicorn.app.base import BaseApplication

# glibc mallopt parameters
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _bound_malloc() -> None:
    """Keep the C heap from growing with threads and large buffers.

    Body chunks are 1 MiB; glibc's dynamic mmap threshold would soon keep such
    buffers in per-thread arenas (up to 8 per core) instead of handing them back.
    A fixed threshold and two arenas keep a worker's resident memory flat.
    Inherited by the forked workers.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc
        return


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from .wsgi import application

        return application


def run_server(*, listen: str, workers: int, threads: int) -> None:
    """Serve the registry until SIGTERM/SIGINT, with gthread workers.

    Threads keep slow uploads from holding a whole process.  sendfile is left
    at gunicorn's default (on): setting it to True explicitly turns it off in
    gunicorn 27.
    """
    _bound_malloc()
    _Server(
        {
            "bind": listen,
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "timeout": 120,
            "graceful_timeout": 30,
            "keepalive": 75,
            "control_socket_disable": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            # Heartbeat files in memory where the system has it (not on macOS).
            **({"worker_tmp_dir": "/dev/shm"} if os.path.isdir("/dev/shm") else {}),
        }
    ).run()
