"""hypercorn dies on some client input (pipelined requests: BusyResourceError in its own tasks); the
server must not: ``run_hypercorn`` serves again on the same listening socket."""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from mcpvisor.runtime.transports.http._hypercorn_runner import run_hypercorn


def _port_of_fd(bind: str) -> int:
    assert bind.startswith("fd://")
    with socket.socket(fileno=int(bind[5:])) as sock:
        port: int = sock.getsockname()[1]
        return port


async def test_a_hypercorn_that_dies_is_started_again_on_the_same_socket(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    second_running = trio.Event()

    async def serve(app: Any, config: Any, *, task_status: trio.TaskStatus[list[str]]) -> None:
        port = _port_of_fd(config.bind[0])  # the duplicate it was given, closed here as hypercorn does
        calls.append(port)
        task_status.started([f"http://127.0.0.1:{port}"])
        if len(calls) == 1:
            raise ExceptionGroup("hypercorn", [trio.BusyResourceError("another task is sending")])
        second_running.set()
        await trio.sleep_forever()

    monkeypatch.setattr("hypercorn.trio.serve", serve)
    caplog.set_level(logging.ERROR, logger="mcpvisor.runtime.transports")
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(run_hypercorn, object(), Config(), listeners))
        assert bound == port
        with trio.fail_after(5):
            await second_running.wait()
        # The listening socket stayed open throughout: a client can still connect.
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await client.aclose()
        nursery.cancel_scope.cancel()
    assert calls == [port, port]
    (line,) = [r.getMessage() for r in caplog.records]
    assert "hypercorn stopped on an error (BusyResourceError: another task is sending)" in line
    assert caplog.records[0].exc_info is None  # one line, no traceback
    assert listeners[0].socket.fileno() == -1  # closed at the end


async def test_a_failure_before_the_first_start_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    async def serve(app: Any, config: Any, *, task_status: trio.TaskStatus[list[str]]) -> None:
        raise OSError("cannot start")

    monkeypatch.setattr("hypercorn.trio.serve", serve)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    with pytest.raises(BaseExceptionGroup) as info:  # serve_http turns it into one ListenError line
        await run_hypercorn(object(), Config(), listeners)
    (error,) = info.value.exceptions
    assert isinstance(error, OSError) and str(error) == "cannot start"
