"""State handles on several nodes of one Redis (issue 11, the 2026-07-28 era): the analogs of the two
session data-loss bugs, concurrent increments, and a node that stops.

Nodes run in this process on one private redis-server, each with its own ``Server`` object and its own
``RedisSessionStore``, so a handle's record and values can only cross nodes through Redis. A client
uses the handle through whichever node it likes, as behind a round-robin balancer. The real-process
case (the SDK's default client through a round-robin proxy, a node SIGKILLed) is in
test_cluster_handles_process.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
from mcpvisor.backends import RedisSessionStore
from mcpvisor.runtime.server import Context, Server, StateHandle, start_server
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client

MODERN = "2026-07-28"


class Gate:
    """Holds ``stash`` between its handle check and its write, so a test can close the handle there."""

    def __init__(self) -> None:
        self.checked = trio.Event()
        self.release = trio.Event()


def make_app(gate: Gate | None = None) -> Server:
    """A fresh Server per node: nodes share nothing in this process but Redis."""
    app = Server("cluster-handle-tests")

    @app.tool()
    async def open_counter(ctx: Context, ttl: float | None = None) -> str:
        handle = await ctx.open_handle(ttl=ttl)
        await ctx.set_state("count", 0)
        return handle

    @app.tool()
    async def bump(ctx: Context, handle: StateHandle) -> int:
        """One atomic increment of the handle's ``count``."""
        count: int = await ctx.update_state("count", lambda n: n + 1, default=0)
        return count

    @app.tool()
    async def stash(ctx: Context, handle: StateHandle, key: str) -> str:
        """Write ``key`` once the test opens the gate (the handle was checked before the tool ran)."""
        if gate is not None:
            gate.checked.set()
            await gate.release.wait()
        await ctx.set_state(key, "late")
        return "stashed"

    @app.tool()
    async def close(ctx: Context, handle: StateHandle) -> str:
        await ctx.close_handle()
        return "closed"

    return app


@asynccontextmanager
async def nodes(
    url: str, prefix: str, count: int, *, gate: Gate | None = None, names: str = "h", **options: Any
) -> AsyncIterator[list[Any]]:
    """``count`` nodes named ``{names}0``, ...: every cluster node holds a liveness lease on its name."""
    async with AsyncExitStack() as stack:
        running = []
        for i in range(count):
            store = RedisSessionStore(url, prefix=prefix)
            stack.push_async_callback(store.aclose)
            node = await stack.enter_async_context(
                start_server(make_app(gate), session_state_store=store, node_id=f"{names}{i}", **options)
            )
            running.append(node)
        yield running


@asynccontextmanager
async def modern(node: Any) -> AsyncIterator[MemoryClient]:
    info = {"name": "client-a", "version": "1"}
    async with open_memory_client(node, protocol_version=MODERN, client_info=info) as client:
        yield client


def text(result: Mapping[str, Any]) -> str:
    return str(result["content"][0]["text"])


def value(result: Mapping[str, Any]) -> Any:
    assert not result.get("isError"), result
    return result["structuredContent"]["result"]


async def stored_keys(url: str, prefix: str, handle: str) -> list[str]:
    async with RedisSessionStore(url, prefix=prefix) as store:
        return sorted(await store.keys(handle))


async def test_a_handle_closed_through_one_node_is_refused_on_the_other_and_nothing_revives(
    redis_server: str, redis_prefix: str
) -> None:
    with trio.fail_after(30):
        async with nodes(redis_server, redis_prefix, 2) as (a, b), modern(a) as on_a, modern(b) as on_b:
            handle = text(await on_a.call_tool("open_counter"))
            assert value(await on_b.call_tool("bump", {"handle": handle})) == 1
            assert value(await on_a.call_tool("bump", {"handle": handle})) == 2
            assert value(await on_b.call_tool("bump", {"handle": handle})) == 3
            assert await stored_keys(redis_server, redis_prefix, handle) != []
            assert text(await on_a.call_tool("close", {"handle": handle})) == "closed"
            assert await stored_keys(redis_server, redis_prefix, handle) == []
            for client in (on_b, on_a, on_b):
                refused = await client.call_tool("bump", {"handle": handle})
                assert refused["isError"] and "unknown, closed or expired" in text(refused), refused
            assert await stored_keys(redis_server, redis_prefix, handle) == []  # no value came back
            assert handle not in a.handle_ids() and handle not in b.handle_ids()


async def test_a_write_in_flight_on_one_node_when_another_closes_the_handle_does_not_revive_it(
    redis_server: str, redis_prefix: str
) -> None:
    gate = Gate()
    with trio.fail_after(30):
        async with (
            nodes(redis_server, redis_prefix, 2, gate=gate) as (a, b),
            modern(a) as on_a,
            modern(b) as on_b,
        ):
            handle = text(await on_a.call_tool("open_counter"))
            assert value(await on_a.call_tool("bump", {"handle": handle})) == 1
            outcome: list[Mapping[str, Any]] = []

            async def stash_on_b() -> None:
                outcome.append(await on_b.call_tool("stash", {"handle": handle, "key": "late"}))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stash_on_b)
                await gate.checked.wait()  # b checked the handle and is about to write
                assert text(await on_a.call_tool("close", {"handle": handle})) == "closed"
                gate.release.set()
            # The write lost the race with the close: it is refused, and leaves nothing behind.
            assert outcome[0]["isError"] and "unknown, closed or expired" in text(outcome[0]), outcome
            assert await stored_keys(redis_server, redis_prefix, handle) == []
            refused = await on_b.call_tool("bump", {"handle": handle})
            assert refused["isError"] and "unknown, closed or expired" in text(refused)
            assert await stored_keys(redis_server, redis_prefix, handle) == []


async def test_a_handle_expires_on_every_node_at_once_and_its_values_go(
    redis_server: str, redis_prefix: str
) -> None:
    with trio.fail_after(30):
        async with nodes(redis_server, redis_prefix, 2) as (a, b), modern(a) as on_a, modern(b) as on_b:
            handle = text(await on_a.call_tool("open_counter", {"ttl": 1.5}))
            assert value(await on_b.call_tool("bump", {"handle": handle})) == 1
            assert value(await on_a.call_tool("bump", {"handle": handle})) == 2
            await trio.sleep(1.6)
            for client in (on_b, on_a):
                refused = await client.call_tool("bump", {"handle": handle})
                assert refused["isError"] and "expired" in text(refused), refused
            assert await stored_keys(redis_server, redis_prefix, handle) == []
            assert handle not in a.handle_ids() and handle not in b.handle_ids()


async def test_an_idle_stop_on_one_node_keeps_the_values_another_node_uses(
    redis_server: str, redis_prefix: str
) -> None:
    with trio.fail_after(30):
        async with (
            nodes(redis_server, redis_prefix, 1, handle_idle_timeout=0.3) as (a,),
            nodes(redis_server, redis_prefix, 1, names="other") as (b,),
            modern(a) as on_a,
            modern(b) as on_b,
        ):
            handle = text(await on_a.call_tool("open_counter"))
            assert value(await on_a.call_tool("bump", {"handle": handle})) == 1
            count = 1
            # b keeps using the handle while a's actor for it goes idle and stops.
            with trio.fail_after(10):
                while handle in a.handle_ids():
                    count += 1
                    assert value(await on_b.call_tool("bump", {"handle": handle})) == count
                    await trio.sleep(0.05)
            for _ in range(3):
                count += 1
                assert value(await on_b.call_tool("bump", {"handle": handle})) == count
            assert await stored_keys(redis_server, redis_prefix, handle) != []
            count += 1
            assert value(await on_a.call_tool("bump", {"handle": handle})) == count  # a resumes it
            assert handle in a.handle_ids() and handle in b.handle_ids()


async def test_concurrent_increments_through_two_nodes_lose_none(
    redis_server: str, redis_prefix: str
) -> None:
    workers, calls = 4, 25  # per node
    with trio.fail_after(60):
        async with nodes(redis_server, redis_prefix, 2) as (a, b), modern(a) as on_a, modern(b) as on_b:
            handle = text(await on_a.call_tool("open_counter"))
            counts: list[int] = []

            async def bump_through(client: MemoryClient) -> None:
                for _ in range(calls):
                    counts.append(value(await client.call_tool("bump", {"handle": handle})))

            async with trio.open_nursery() as nursery:
                for _ in range(workers):
                    nursery.start_soon(bump_through, on_a)
                    nursery.start_soon(bump_through, on_b)
            total = 2 * workers * calls
            assert sorted(counts) == list(range(1, total + 1))  # every increment landed once
            assert value(await on_b.call_tool("bump", {"handle": handle})) == total + 1


async def test_a_node_that_stops_leaves_the_handle_to_the_others_with_its_values(
    redis_server: str, redis_prefix: str
) -> None:
    with trio.fail_after(30):
        async with nodes(redis_server, redis_prefix, 1) as (b,), modern(b) as on_b:
            async with nodes(redis_server, redis_prefix, 1, names="other") as (a,), modern(a) as on_a:
                handle = text(await on_a.call_tool("open_counter"))
                assert value(await on_a.call_tool("bump", {"handle": handle})) == 1
                assert value(await on_b.call_tool("bump", {"handle": handle})) == 2
                assert value(await on_a.call_tool("bump", {"handle": handle})) == 3
            # a stopped (its actors stopped in an orderly way): the handle goes on through b.
            assert value(await on_b.call_tool("bump", {"handle": handle})) == 4
            assert text(await on_b.call_tool("close", {"handle": handle})) == "closed"
            assert await stored_keys(redis_server, redis_prefix, handle) == []


async def test_on_one_node_too_a_write_in_flight_when_the_handle_closes_does_not_revive_it() -> None:
    gate = Gate()
    with trio.fail_after(30):
        async with start_server(make_app(gate)) as node, modern(node) as first, modern(node) as second:
            handle = text(await first.call_tool("open_counter"))
            outcome: list[Mapping[str, Any]] = []

            async def stash() -> None:
                outcome.append(await second.call_tool("stash", {"handle": handle, "key": "late"}))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stash)
                await gate.checked.wait()
                assert text(await first.call_tool("close", {"handle": handle})) == "closed"
                gate.release.set()
            assert outcome[0]["isError"] and "unknown, closed or expired" in text(outcome[0]), outcome
            assert await node.handles.store.keys(handle) == []
