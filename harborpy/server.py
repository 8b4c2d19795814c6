"""gunicorn, embedded: the production WSGI server behind ``harborpy serve``."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


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

    Threads keep slow uploads from holding a whole process; sendfile stays on
    for blob downloads from the filesystem.
    """
    _Server(
        {
            "bind": listen,
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "timeout": 120,
            "graceful_timeout": 30,
            "keepalive": 75,
            "sendfile": True,
            "control_socket_disable": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "worker_tmp_dir": "/dev/shm",
        }
    ).run()
