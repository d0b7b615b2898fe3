"""Start and stop a private ``redis-server`` for the test session.

The tests never touch a Redis the machine already runs (port 6379 or any other): they start their own
server on a free loopback port, with persistence off and its own working directory, and stop it by
pid. ``redis-server`` has no ``--port 0``, so a free port is found by binding a socket and closing it;
another process may grab the port in between, so a failed start is retried on a fresh port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import attrs
import pytest

_START_ATTEMPTS = 5
_READY_TIMEOUT = 10.0


class RedisServerError(RuntimeError):
    """The private redis-server could not be started."""


@attrs.frozen
class RedisServer:
    """A running private server: its URL, and the process to stop."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """Terminate by pid, wait, and kill if it does not exit."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def require_redis_server(hint: str) -> str:
    """The ``redis-server`` binary; without one the test fails under ``CI=true`` (a missing service is
    never hidden there) and is skipped elsewhere, with ``hint`` saying why."""
    binary = redis_server_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {hint}", pytrace=False)
        pytest.skip(hint)
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    """One raw RESP PING; no client library needed, so this works before anything is imported."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(binary: str, workdir: Path) -> RedisServer:
    """Start ``binary`` on a free loopback port; retried on a port collision."""
    last_error = "no attempt made"
    for attempt in range(_START_ATTEMPTS):
        port = _free_port()
        rundir = workdir / f"redis-{port}-{attempt}"
        rundir.mkdir(parents=True, exist_ok=True)
        log_path = rundir / "redis.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(rundir),
                    "--protected-mode",
                    "yes",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port, process=process, log_path=log_path)
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break  # exited: most likely the port was taken meanwhile; retry on another one
            if _ping(port):
                return server
            time.sleep(0.02)
        server.stop()
        last_error = log_path.read_text(errors="replace")[-2000:]
    raise RedisServerError(f"redis-server did not start after {_START_ATTEMPTS} attempts:\n{last_error}")
