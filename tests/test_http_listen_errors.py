"""A port we cannot listen on is one clear line and exit status 2, never a traceback (issue 7, item 15)."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import ListenError, serve_http

from mcpvisor.cli import _DEMO_HINT

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other socket listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpvisor", "demo", "--transport", "http", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("http_server", ["h11", "hypercorn"])
def test_a_busy_port_is_one_line_and_exit_2(busy_port: int, http_server: str) -> None:
    done = run_demo("--port", str(busy_port), "--http-server", http_server)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.replace(_DEMO_HINT["http"] + "\n", "").splitlines()  # the demo's greeting
    assert len(lines) == 1, lines  # nothing started, nothing logged: the one line
    assert lines[0].startswith(
        f"mcpvisor: error: cannot listen on 127.0.0.1:{busy_port}: address already in use"
    )
    assert "Traceback" not in done.stderr


def test_a_host_that_does_not_resolve_is_one_line_and_exit_2() -> None:
    done = run_demo("--host", "no-such-host.invalid", "--port", "0")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "mcpvisor: error: cannot listen on no-such-host.invalid:0: cannot resolve the host" in done.stderr


def test_an_address_not_of_this_machine_is_one_line_and_exit_2() -> None:
    done = run_demo("--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: never a local address
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "mcpvisor: error: cannot listen on 192.0.2.1:0: the address is not one of this machine's"
        in done.stderr
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EADDRINUSE, "address already in use"),
        (errno.EACCES, "permission denied"),
        (errno.EADDRNOTAVAIL, "not one of this machine's"),
        (errno.EMFILE, "Too many open files"),
    ],
)
def test_the_message_names_the_cause(code: int, expected: str) -> None:
    error = ListenError.from_os_error("0.0.0.0", 80, OSError(code, "x"))
    assert str(error).startswith("cannot listen on 0.0.0.0:80: ") and expected in str(error)
    assert isinstance(error, OSError) and error.errno == code


@pytest.mark.parametrize("http_server", ["h11", "hypercorn"])
async def test_serve_http_raises_listen_error(busy_port: int, http_server: str) -> None:
    async with start_server(Server("busy", "1.0.0")) as mcp:
        with pytest.raises(ListenError, match="address already in use") as info:
            await serve_http(mcp, port_number=busy_port, server=http_server)
    assert info.value.errno == errno.EADDRINUSE
