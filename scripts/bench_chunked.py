"""What decoding a chunked request body costs: gunicorn's reader against harborpy's.

docker and podman stream a layer as one PATCH with ``Transfer-Encoding: chunked``.
This feeds the same chunked bytes through a socket pair to (a) gunicorn's
``ChunkedReader`` read in 1 MiB pieces, as harborpy did before, and (b)
``distribution.bodies``' decoder, which reads the chunks' data straight into
1 MiB buffers, and prints the reading thread's CPU time and wall time.

    .venv/bin/python scripts/bench_chunked.py [--mib 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harborpy.settings")

import django

django.setup()

from gunicorn.http.body import Body, ChunkedReader  # noqa: E402
from gunicorn.http.unreader import SocketUnreader  # noqa: E402

from distribution import bodies  # noqa: E402


class _Request:
    """What gunicorn's ChunkedReader and harborpy's decoder use of a request."""

    must_close = False
    trailers = None
    limit_request_field_size = 8190
    max_buffer_headers = 8190 * 32

    def __init__(self, unreader: SocketUnreader) -> None:
        self.unreader = unreader


def encoded(total: int, size: int) -> bytes:
    piece = os.urandom(size)
    return (b"%x\r\n" % size + piece + b"\r\n") * (total // size) + b"0\r\n\r\n"


def read_once(wire: bytes, expected: int, decoder: str) -> tuple[float, float]:
    ours, theirs = socket.socketpair()

    def send() -> None:
        with ours:
            ours.sendall(wire)

    sender = threading.Thread(target=send)
    sender.start()
    unreader = SocketUnreader(theirs)
    body = Body(ChunkedReader(_Request(unreader), unreader))
    cpu, wall, got = time.thread_time(), time.monotonic(), 0
    if decoder == "harborpy":
        chunks = bodies._chunked_socket_reader(body)
        assert chunks is not None, "the decoder did not take the body"
        for chunk in chunks:
            got += len(chunk)
    else:
        while chunk := body.read(bodies.CHUNK_SIZE):
            got += len(chunk)
    cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
    sender.join()
    theirs.close()
    assert got == expected, (got, expected)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="body size in MiB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    total = args.mib << 20
    print(f"chunked body of {args.mib} MiB, median of {args.runs} runs")
    print("| chunk size | decoder | reader CPU (s) | wall (s) | MB/s |")
    print("|---|---|---|---|---|")
    for size in (8 << 10, 32 << 10, 1 << 20):
        wire = encoded(total, size)
        expected = total // size * size
        for decoder in ("gunicorn", "harborpy"):
            runs = [read_once(wire, expected, decoder) for _ in range(args.runs)]
            cpu = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            print(
                f"| {size >> 10} KiB | {decoder} | {cpu:.3f} | {wall:.3f} "
                f"| {expected / wall / 1e6:.0f} |"
            )


if __name__ == "__main__":
    main()
