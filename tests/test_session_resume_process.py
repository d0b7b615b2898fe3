"""The official SDK client keeps its session across a kill -9 of the server process (SQLite store).

The demo server runs as a real process (`mcpvisor demo --transport http --state-store sqlite:///...`).
The client counts, the process is killed without any chance to clean up, a new process starts on the
same port and file, and the same `ClientSession` (same Mcp-Session-Id) counts on from the stored value.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio
from _demo_process import start_demo
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo_process(port: int, db: Path) -> Iterator[subprocess.Popen[str]]:
    proc, _url = start_demo("--port", str(port), "--state-store", f"sqlite:///{db}")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def count_of(result: Any) -> int:
    assert not result.is_error, result
    text: str = result.content[0].text
    return int(text.split()[2])  # "count = N (session ...)"


async def test_sdk_client_counts_on_after_the_server_is_killed(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "state.db"
    url = f"http://127.0.0.1:{port}/mcp"
    with trio.fail_after(60):
        with demo_process(port, db) as first:
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                assert count_of(await session.call_tool("counter")) == 1
                assert count_of(await session.call_tool("counter")) == 2
                os.kill(first.pid, signal.SIGKILL)  # no shutdown, no flush: only what was acknowledged
                await trio.to_thread.run_sync(first.wait)
                with demo_process(port, db) as second:
                    assert count_of(await session.call_tool("counter")) == 3
                    assert second.poll() is None
