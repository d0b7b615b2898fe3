"""A private redis-server for a benchmark run: a free loopback port, started and waited for here,
stopped by the caller through the returned process (never a shared server, never flushed).

Shared by the benchmarks that measure Redis (``backends.py``, ``tasks.py``); run them as scripts, so
this directory is on ``sys.path``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        log("redis-server not found: skipping Redis")
        return None
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    log("redis-server did not start: skipping Redis")
    return None
