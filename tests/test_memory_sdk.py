"""The official SDK's ClientSession against the runtime in-process (``open_sdk_streams``)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _runtime_app import app
from mcp import ClientSession
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.memory import open_sdk_streams


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def test_sdk_session_in_memory_with_state_and_restart() -> None:
    async with start_server(app) as running:
        async with open_sdk_streams(running) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "runtime-tests"
            assert {t.name for t in (await session.list_tools()).tools} >= {"counter", "crash"}
            assert _text(await session.call_tool("counter", {})) == "1"
            with pytest.raises(Exception, match="session crashed"):
                await session.call_tool("crash", {})
            assert _text(await session.call_tool("counter", {})) == "2"
            (sid,) = running.session_ids()
            assert running.session_incarnations(sid) == 2
        assert running.session_ids() == []  # leaving the streams closed the session


async def test_sdk_concurrent_calls_each_get_their_own_answer() -> None:
    # Every request answers straight into the one writer (no per-request pump): answers must still
    # reach the right callers, a slow request must not hold up a fast one, and counts must add up.
    async with (
        start_server(app) as running,
        open_sdk_streams(running) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        got: list[str] = []
        async with trio.open_nursery() as nursery:

            async def slow() -> None:
                got.append("wait:" + _text(await session.call_tool("wait", {"seconds": 0.2})))

            async def fast() -> None:
                for _ in range(20):
                    got.append("counter:" + _text(await session.call_tool("counter", {})))

            async def other() -> None:
                got.append("version:" + _text(await session.call_tool("version", {})))

            nursery.start_soon(slow)
            nursery.start_soon(fast)
            nursery.start_soon(other)
        assert got[-1] == "wait:done"  # the slow one came last, the others did not wait for it
        assert "version:2025-11-25" in got
        assert [g for g in got if g.startswith("counter:")] == [f"counter:{n}" for n in range(1, 21)]


async def test_sdk_cancelled_request_does_not_hold_the_close() -> None:
    # A request the client abandoned (its timeout: the SDK sends notifications/cancelled) gets no
    # answer; leaving the streams afterwards must not wait out the 5 s grace kept for requests that
    # will still be answered.

    async with start_server(app) as running:
        async with open_sdk_streams(running) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            with trio.move_on_after(0.1):
                await session.call_tool("wait", {"seconds": 3600})
            assert _text(await session.call_tool("counter", {})) == "1"
            start = trio.current_time()
        assert trio.current_time() - start < 2.0
        assert running.session_ids() == []
