"""``ctx.update_state``: an atomic read-modify-write run inside the StateStoreServer.

The defect it fixes (issue 7, item 4): ``get_state`` then ``set_state`` are two messages, and a
session runs its requests concurrently, so 10,000 concurrent ``counter`` calls in one session ended at
a count far below the number of calls acknowledged. ``update_state`` is one message: the function
runs in the store actor, between the read and the write, and no other operation interleaves.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import httpx2
import pytest
import trio
from _http_messages import INIT, JSON_ONLY
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import LocalEnv, NoSessionState
from mcpvisor.runtime.server.demo import server as demo_server
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client
from mcpvisor.runtime.tree._port import SessionBusy

from mcpvisor import Context, Server, start_server

CALLS = 10_000


async def _call_until_answered(client: MemoryClient, name: str, args: dict[str, Any] | None = None) -> Any:
    """One tool call; a busy session (full mailbox, in-flight limit) is asked again, so every call of
    the test is acknowledged exactly once and the count can be compared with the calls made."""
    for attempt in range(1_000):
        try:
            return await client.call_tool(name, args)
        except SessionBusy:
            await trio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
    raise AssertionError(f"{name} was refused as busy 1,000 times")


async def _hammer(client: MemoryClient, name: str, calls: int) -> int:
    acknowledged = 0

    async def one() -> None:
        nonlocal acknowledged
        await _call_until_answered(client, name)
        acknowledged += 1

    async with trio.open_nursery() as nursery:
        for _ in range(calls):
            nursery.start_soon(one)
    return acknowledged


async def test_ten_thousand_concurrent_demo_counter_calls_count_exactly() -> None:
    """The demo's ``counter`` (now ``update_state``): every acknowledged call is counted, exactly."""
    with trio.fail_after(120):
        async with (
            # Room for every call at once: this tests the count, not the request limits.
            start_server(
                demo_server, mailbox_size=CALLS + 64, max_queued_requests_per_session=CALLS
            ) as running,
            open_memory_client(running, protocol_version="2025-06-18") as client,
        ):
            acknowledged = await _hammer(client, "counter", CALLS)
            result = await client.call_tool("counter")
    assert acknowledged == CALLS
    assert result["content"][0]["text"].startswith(f"count = {CALLS + 1} ")


def _counting_server() -> Server:
    server = Server("counting")

    @server.tool
    async def bump(ctx: Context) -> int:
        new: int = await ctx.update_state("n", lambda n: n + 1, default=0)
        return new

    @server.tool
    async def read(ctx: Context) -> int | None:
        value: int | None = await ctx.get_state("n")
        return value

    @server.tool
    async def fail(ctx: Context) -> str:
        def boom(_old: Any) -> Any:
            raise ValueError("no change wanted")

        try:
            await ctx.update_state("n", boom, default=0)
        except ValueError as exc:
            return f"raised: {exc}"
        return "did not raise"

    @server.tool
    async def unserializable(ctx: Context) -> str:
        try:
            await ctx.update_state("n", lambda _old: object(), default=0)
        except TypeError as exc:
            return f"raised: {exc}"
        return "did not raise"

    return server


async def test_update_returns_each_new_value_once() -> None:
    """Each call sees its own new value: 1..N each returned exactly once (no two calls read the same)."""
    seen: list[int] = []
    server = _counting_server()
    with trio.fail_after(60):
        async with (
            start_server(server) as running,
            open_memory_client(running, protocol_version="2025-06-18") as client,
        ):

            async def one() -> None:
                result = await _call_until_answered(client, "bump")
                seen.append(result["structuredContent"]["result"])

            async with trio.open_nursery() as nursery:
                for _ in range(500):
                    nursery.start_soon(one)
    assert sorted(seen) == list(range(1, 501))


async def test_a_raising_function_writes_nothing_and_reaches_the_caller() -> None:
    server = _counting_server()
    async with (
        start_server(server) as running,
        open_memory_client(running, protocol_version="2025-06-18") as client,
    ):
        await client.call_tool("bump")
        failed = await client.call_tool("fail")
        assert failed["content"][0]["text"] == "raised: no change wanted"
        bad = await client.call_tool("unserializable")
        assert bad["content"][0]["text"].startswith("raised: ")
        assert "'n'" in bad["content"][0]["text"]  # the codec's error names the key
        after = await client.call_tool("read")
        assert after["structuredContent"] == {"result": 1}
        # the store actor lives on after both failures
        assert (await client.call_tool("bump"))["structuredContent"] == {"result": 2}


async def test_update_goes_through_the_codec() -> None:
    """The value stored is what ``set_state`` would store: a tuple comes back as a list."""
    env = LocalEnv()
    ctx = Context(env)
    returned = await ctx.update_state("pair", lambda old: (*old, 3), default=(1, 2))
    assert returned == (1, 2, 3)
    assert await ctx.get_state("pair") == [1, 2, 3]
    with pytest.raises(TypeError, match="'pair'"):
        await ctx.update_state("pair", lambda _old: object())
    assert await ctx.get_state("pair") == [1, 2, 3]


async def test_a_request_local_value_is_updated_where_it_lives() -> None:
    """``serializable=False`` values never reach the store: update_state updates the local value."""
    env = LocalEnv()
    ctx = Context(env)
    lock = trio.Lock()
    await ctx.set_state("handles", [lock], serializable=False)
    out = await ctx.update_state("handles", lambda old: [*old, "x"])
    assert out == [lock, "x"]
    assert await ctx.get_state("handles") == [lock, "x"]
    assert env.store == {}  # nothing was encoded or stored


async def test_update_state_needs_a_session() -> None:
    ctx = Context(LocalEnv(session_id=None))
    with pytest.raises(NoSessionState):
        await ctx.update_state("n", lambda n: n + 1, default=0)


async def test_an_async_function_is_refused_before_anything_is_written() -> None:
    env = LocalEnv()
    ctx = Context(env)

    async def not_sync(old: Any) -> Any:
        return old

    with pytest.raises(TypeError, match="sync function"):
        await ctx.update_state("n", not_sync, default=0)
    assert env.store == {}


async def test_update_state_in_a_server_refuses_an_async_function() -> None:
    server = Server("async-fn")

    @server.tool
    async def bad(ctx: Context) -> str:
        async def not_sync(old: Any) -> Any:
            return old

        try:
            await ctx.update_state("n", not_sync, default=0)
        except TypeError as exc:
            return str(exc)
        return "accepted"

    async with (
        start_server(server) as running,
        open_memory_client(running, protocol_version="2025-06-18") as client,
    ):
        result = await client.call_tool("bad")
    assert "sync function" in result["content"][0]["text"]


async def test_stateless_update_state_is_refused_loudly() -> None:
    server = _counting_server()
    async with (
        start_server(server) as running,
        open_memory_client(running, protocol_version="2026-07-28") as client,
    ):
        with pytest.raises(JsonRpcError, match="stateless"):
            await client.call_tool("bump")


async def test_concurrent_demo_counter_calls_over_http_count_exactly() -> None:
    """The same over real HTTP (the h11 server, loopback), with fewer calls: one session, 300 POSTs
    in flight together on 30 connections, every one acknowledged and counted."""
    calls, connections = 300, 30
    with trio.fail_after(120):
        async with start_server(demo_server) as running, trio.open_nursery() as nursery:
            bound = await nursery.start(functools.partial(serve_http, running, port_number=0))
            url = f"http://127.0.0.1:{bound}/mcp"
            limits = httpx2.Limits(max_connections=connections)
            async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
                init = await http.post(url, json=INIT, headers=JSON_ONLY)
                session = {**JSON_ONLY, "mcp-session-id": init.headers["mcp-session-id"]}
                note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                assert (await http.post(url, json=note, headers=session)).status_code == 202
                counts: list[int] = []

                async def one(request_id: int) -> None:
                    call = {
                        "jsonrpc": "2.0",
                        "id": request_id,
                        "method": "tools/call",
                        "params": {"name": "counter"},
                    }
                    reply = await http.post(url, json=call, headers=session)
                    assert reply.status_code == 200, reply.text
                    text = reply.json()["result"]["content"][0]["text"]
                    counts.append(int(text.split()[2]))

                async with trio.open_nursery() as calls_nursery:
                    for request_id in range(2, calls + 2):
                        calls_nursery.start_soon(one, request_id)
            nursery.cancel_scope.cancel()
    assert sorted(counts) == list(range(1, calls + 1))  # every acknowledged call counted exactly once
