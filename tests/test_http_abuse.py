"""Connection abuse on our HTTP/1.1 server (issue 7, item 9): request bodies that never come, more
connections than the server will hold, and no file descriptors left. A fresh client is still served,
nothing logs a traceback per connection, and the server keeps running."""

from __future__ import annotations

import functools
import logging
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from mcpvisor.runtime.transports.http._asgi_h11 import serve_asgi
from mcpvisor.runtime.transports.http._connection_limits import default_max_connections
from test_asgi_h11 import echo, read_to_eof, read_until
from test_http_framing import POST

#: every test here runs on each request parser of our server (conftest.http_parser)
pytestmark = pytest.mark.usefixtures("http_parser")

ROOT = Path(__file__).resolve().parent.parent
SLOW_HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n"  # and then nothing


@asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(functools.partial(serve_asgi, app, port=0, **options))
        yield port
        nursery.cancel_scope.cancel()


async def fresh_get(port: int) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(b"GET /fresh HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        return await read_to_eof(stream)
    finally:
        await stream.aclose()


async def open_slow_bodies(port: int, count: int) -> list[trio.SocketStream]:
    streams = []
    for _ in range(count):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(SLOW_HEAD)
        streams.append(stream)
    return streams


async def test_a_body_that_never_comes_is_408_after_the_body_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with serving(echo, body_timeout=0.3) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(SLOW_HEAD + b"only part of it")
        started = trio.current_time()
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower()
        assert 0.25 < trio.current_time() - started < 3
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_slow_body_flood_does_not_lock_out_a_fresh_client(caplog: pytest.LogCaptureFixture) -> None:
    """300 connections that send a head and no body, against a cap of 100: the oldest stalled ones
    make room, so a fresh client is served at once, not after the body timeout."""
    caplog.set_level(logging.INFO, logger="mcpvisor.runtime.transports")
    async with serving(echo, max_connections=100, body_timeout=60) as port:
        flood = await open_slow_bodies(port, 300)
        with trio.fail_after(3):
            answer = await fresh_get(port)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"GET /fresh  ")
        for stream in flood:
            await stream.aclose()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 2, warnings  # counted, logged once per interval (and once at stop)
    assert any("closed to make room" in w for w in warnings), warnings


async def test_over_the_cap_with_every_connection_busy_is_a_clean_503() -> None:
    """Connections busy in the app (a stream) cannot make room: the next one gets 503, Retry-After,
    Connection: close; one is served again as soon as a busy one ends."""
    release = trio.Event()

    async def streaming(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/fresh":
            await echo(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"open\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"end\n"})

    async with serving(streaming, max_connections=20) as port:
        busy = []
        for _ in range(20):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
            await read_until(stream, b"open\n", bytearray())
            busy.append(stream)
        refused = await fresh_get(port)
        head = refused.split(b"\r\n\r\n")[0].lower()
        assert head.startswith(b"http/1.1 503 ")
        assert b"retry-after: 1" in head and b"connection: close" in head
        release.set()
        for stream in busy:
            await read_until(stream, b"end\n", bytearray())
            await stream.aclose()
        for _ in range(100):  # the busy connections' tasks are ending
            answer = await fresh_get(port)
            if answer.startswith(b"HTTP/1.1 200 "):
                break
            await trio.sleep(0.02)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"GET /fresh  ")


def test_the_default_cap_leaves_room_below_the_file_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 16 <= default_max_connections() <= min(10_000, soft)
    assert default_max_connections(1024) == 1024 - 128
    assert default_max_connections(resource.RLIM_INFINITY) == 10_000


async def test_serve_asgi_validates_its_limits() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        await serve_asgi(echo, port=0, max_connections=0)
    with pytest.raises(ValueError, match="body_timeout"):
        await serve_asgi(echo, port=0, body_timeout=0)


SERVER_WITH_FEW_FDS = textwrap.dedent(
    """
    import functools, logging, resource, sys, trio
    from mcpvisor.runtime.transports.http._asgi_h11 import serve_asgi
    sys.path.insert(0, "tests")
    from test_asgi_h11 import echo

    resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    async def main():
        async with trio.open_nursery() as nursery:
            # a cap far above what the descriptors allow: accept() itself runs out (EMFILE)
            port = await nursery.start(functools.partial(
                serve_asgi, echo, port=0, max_connections=5000, body_timeout=60))
            print(port, flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


@pytest.mark.slow
def test_out_of_file_descriptors_the_server_backs_off_and_keeps_serving() -> None:
    """A server whose cap is above its descriptor limit (128 here): accept() fails with EMFILE; it
    closes the longest-waiting connections, backs off briefly, keeps serving and logs a summary."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_WITH_FEW_FDS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    async def flood_then_fresh(port: int) -> bytes:
        flood = await open_slow_bodies(port, 300)  # well past 128 descriptors
        await trio.sleep(0.5)
        try:
            with trio.fail_after(5):
                return await fresh_get(port)
        finally:
            for stream in flood:
                await stream.aclose()

    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        answer = trio.run(flood_then_fresh, port)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert proc.poll() is None, "the server died"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err, err[-3000:]
    assert "accept() ran out of file descriptors" in err, err[-3000:]  # it did run out
    assert len(err.splitlines()) <= 5, err[-3000:]  # counted and summarised, not one line per accept


def test_the_cli_limits_reach_the_server() -> None:
    """`--body-timeout` on the real command: a body that never comes is 408 after it, not after 30 s."""
    from _demo_process import start_demo

    proc, url = start_demo("--port", "0", "--body-timeout", "0.3", "--max-connections", "50")
    try:
        port = int(url.rsplit(":", 1)[1].split("/")[0])

        async def slow_body() -> tuple[bytes, float]:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(POST + b"Content-Length: 50\r\n\r\n")
            started = trio.current_time()
            answer = await read_to_eof(stream)
            return answer, trio.current_time() - started

        answer, took = trio.run(slow_body)
        assert answer.startswith(b"HTTP/1.1 408 ") and took < 3
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--body-timeout=0"], "must be more than 0 seconds"),
        (["--max-connections=0"], "must be at least 1"),
        (["--keep-alive=-1"], "must be more than 0 seconds"),
        (["--max-connections=10", "--http-server=hypercorn"], "hypercorn has no connection cap"),
    ],
)
def test_bad_cli_limits_are_usage_errors(
    flags: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcpvisor.cli import main

    with pytest.raises(SystemExit) as info:
        main(["demo", *flags])
    assert info.value.code == 2 and expected in capsys.readouterr().err


async def test_the_counts_are_logged_once_per_interval(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    from mcpvisor.runtime.transports.http._connection_limits import Tally

    tally = Tally(cap=10, interval=10.0)
    for _ in range(500):
        tally.note("refused")
    assert len(caplog.records) == 1  # the first at once, the rest held back
    await trio.sleep(10)  # the mock clock jumps
    tally.note("evicted")
    assert len(caplog.records) == 2
    assert "499 connection(s) refused" in caplog.records[1].getMessage()
    assert "1 connection(s) waiting on their client closed" in caplog.records[1].getMessage()
    assert tally.totals == {"refused": 500, "evicted": 1}


async def test_making_room_closes_the_longest_waiting_connection() -> None:
    from mcpvisor.runtime.transports.http._connection_limits import Connections

    connections = Connections(max_connections=3, body_timeout=30)
    idle_new, body_old, idle_old = trio.CancelScope(), trio.CancelScope(), trio.CancelScope()
    connections.idle[idle_old] = 1.0
    connections.idle[idle_new] = 5.0
    connections.reading[body_old] = 2.0
    assert connections.evict_oldest() and idle_old.cancel_called and not body_old.cancel_called
    assert connections.evict_oldest() and body_old.cancel_called and not idle_new.cancel_called
    assert connections.evict_oldest() and idle_new.cancel_called
    assert not connections.evict_oldest()  # nobody is waiting: the new connection is refused
