"""State handles (2026-07-28, SEP-2567) end to end in memory: minting, using, crashing, every refusal,
lifetimes, the session era, durable and shared stores, and serving one protocol era."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _sup_children import autojump_clock
from mcpvisor.backends import MemorySessionStore, RedisSessionStore, SessionStateStore
from mcpvisor.runtime.protocol import HANDSHAKE_VERSIONS, JsonRpcError, Request
from mcpvisor.runtime.server import (
    Context,
    CrashSession,
    HandleRefused,
    LocalEnv,
    RunningServer,
    Server,
    StateHandle,
    handle_request,
    start_server,
)
from mcpvisor.runtime.server._state_handle import handle_label
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client
from mcpvisor.supervisors import ChildRestarted
from trio.testing import MockClock

__all__ = ["autojump_clock"]

MODERN = "2026-07-28"

app = Server("handles-tests")


@app.tool()
async def open_basket(ctx: Context, ttl: float | None = None) -> str:
    """Open a basket (a state handle) and return it."""
    handle = await ctx.open_handle(ttl=ttl)
    await ctx.set_state("items", [])
    return handle


@app.tool()
async def add(ctx: Context, basket: StateHandle, item: str) -> list[str]:
    """Add an item to a basket; returns what is in it."""
    items: list[str] = await ctx.get_state("items", [])
    items.append(item)
    await ctx.set_state("items", items)
    return items


@app.tool()
async def count(ctx: Context, handle: StateHandle | None = None) -> int:
    """The demo's counter: the session's, or the handle's."""
    n: int = await ctx.get_state("n", 0) + 1
    await ctx.set_state("n", n)
    return n


@app.tool()
async def crash(ctx: Context, handle: StateHandle | None = None) -> str:
    raise CrashSession("asked to")


@app.tool()
async def close(ctx: Context, basket: StateHandle) -> str:
    await ctx.close_handle()
    return "closed"


@app.tool()
async def close_by_name(ctx: Context, name: str) -> str:
    """Closes a handle given as a plain string (a tool that did not type its parameter)."""
    await ctx.close_handle(name)  # type: ignore[arg-type]
    return "closed"


def text(result: Mapping[str, Any]) -> str:
    return str(result["content"][0]["text"])


def value(result: Mapping[str, Any]) -> Any:
    assert not result.get("isError"), result
    return result["structuredContent"]["result"]


@asynccontextmanager
async def modern(running: RunningServer, name: str = "client-a") -> AsyncIterator[MemoryClient]:
    info = {"name": name, "version": "1"}
    async with open_memory_client(running, protocol_version=MODERN, client_info=info) as client:
        yield client


async def open_basket_of(client: MemoryClient, **arguments: Any) -> str:
    result = await client.call_tool("open_basket", arguments)
    assert not result.get("isError"), result
    return text(result)


# ---- the type and its schema --------------------------------------------------------------------------


def test_a_state_handle_parameter_is_a_string_of_the_minted_shape_in_the_schema() -> None:
    schema = app._tools["add"].tool.input_schema
    prop = schema["properties"]["basket"]
    assert prop["type"] == "string" and prop["pattern"] == "^sh_[A-Za-z0-9_-]{32}$"
    assert "state handle" in prop["description"] and schema["required"] == ["basket", "item"]
    optional = app._tools["count"].tool.input_schema["properties"]["handle"]
    assert optional["anyOf"][1] == {"type": "null"} and optional["default"] is None


def test_minted_handles_are_unguessable_and_of_one_shape() -> None:
    handles = {StateHandle.mint() for _ in range(1000)}
    assert len(handles) == 1000
    for handle in handles:
        assert StateHandle.__from_json__(handle) == handle and len(handle) == 35
    # 32 characters of base64url: 192 random bits (SEP-2567 asks for at least 128)
    assert len({h[3] for h in handles}) > 40


def test_a_tool_takes_one_state_handle_at_most() -> None:
    server = Server("s")
    with pytest.raises(TypeError, match="'a', 'b' all take a StateHandle"):

        @server.tool
        async def two(a: StateHandle, b: StateHandle) -> None: ...


# ---- using handles ------------------------------------------------------------------------------------


async def test_a_handle_keeps_state_across_calls_in_its_own_supervised_actor() -> None:
    async with start_server(app) as running, modern(running) as client:
        basket = await open_basket_of(client)
        assert running.handle_ids() == [basket] and running.handle_incarnations(basket) == 1
        assert value(await client.call_tool("add", {"basket": basket, "item": "shoes"})) == ["shoes"]
        assert value(await client.call_tool("add", {"basket": basket, "item": "socks"})) == ["shoes", "socks"]
        other = await open_basket_of(client)
        assert other != basket
        assert value(await client.call_tool("add", {"basket": other, "item": "hat"})) == ["hat"]
        assert set(await running.store.keys(basket)) == {"__mcpvisor__/handle", "items"}


async def test_a_crash_restarts_the_handles_actor_under_the_same_handle_with_its_values() -> None:
    async with start_server(app) as running, modern(running) as client:
        handle = await open_basket_of(client)
        assert value(await client.call_tool("count", {"handle": handle})) == 1
        first = running.handle_actor(handle)
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("crash", {"handle": handle})
        assert "crashed (CrashSession)" in info.value.message and "same handle" in info.value.message
        assert value(await client.call_tool("count", {"handle": handle})) == 2
        assert running.handle_incarnations(handle) == 2 and running.handle_actor(handle) is not first
        assert any(
            isinstance(e, ChildRestarted) and e.supervisor == f"handle {handle_label(handle)}"
            for e in running.events
        )


async def test_a_handle_crashing_too_often_stops_its_actor_and_keeps_its_values() -> None:
    """As for sessions (issue 7, item 6): giving up on the actor is not a reason to lose the values."""
    async with start_server(app, session_restart_intensity=1) as running, modern(running) as client:
        handle = await open_basket_of(client)
        assert value(await client.call_tool("count", {"handle": handle})) == 1
        for _ in range(2):
            with pytest.raises(JsonRpcError) as info:
                await client.call_tool("crash", {"handle": handle})
        assert "restarted under the same handle (at once, or at its next use" in info.value.message
        slot = running.handles.slots.get(handle)
        if slot is not None:
            with trio.fail_after(5):
                await slot.done.wait()
        assert running.handle_ids() == []  # the actor was stopped
        assert await running.store.keys(handle) != []  # its values were not
        assert value(await client.call_tool("count", {"handle": handle})) == 2  # a new actor, same values


async def test_without_a_handle_a_stateless_request_gets_an_error_saying_what_to_do() -> None:
    async with start_server(app) as running, modern(running) as client:
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("count")
        assert info.value.code == -32603
        assert "names no state handle" in info.value.message and "StateHandle" in info.value.message


async def test_the_session_era_keeps_its_session_state_and_may_use_handles_too() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        assert value(await client.call_tool("count")) == 1
        assert value(await client.call_tool("count")) == 2  # the session's
        basket = await open_basket_of(client)
        assert value(await client.call_tool("add", {"basket": basket, "item": "x"})) == ["x"]
        assert value(await client.call_tool("count")) == 3  # still the session's
        assert value(await client.call_tool("count", {"handle": basket})) == 1  # the handle's


# ---- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "junk",
    ["nope", "sh_short", "sh_" + "a" * 33, "SH_" + "a" * 32, "sh_" + "a" * 31 + "!", "sh_" + "ä" * 32],
)
async def test_a_handle_the_server_cannot_have_minted_is_refused_by_its_shape(junk: str) -> None:
    async with start_server(app) as running, modern(running) as client:
        before = running.store.operations
        refused = await client.call_tool("add", {"basket": junk, "item": "x"})
        assert refused["isError"] and "is not a state handle this server minted" in text(refused)
        assert running.store.operations == before  # refused without a look at the store


async def test_a_well_formed_handle_nobody_minted_is_refused() -> None:
    async with start_server(app) as running, modern(running) as client:
        forged = StateHandle.mint()
        refused = await client.call_tool("add", {"basket": forged, "item": "x"})
        assert refused["isError"] and f"state handle {forged} is unknown, closed or expired" in text(refused)
        assert running.handle_ids() == []


async def test_another_clients_handle_is_refused() -> None:
    async with start_server(app) as running:
        async with modern(running, "client-a") as alice, modern(running, "client-b") as bob:
            basket = await open_basket_of(alice)
            refused = await bob.call_tool("add", {"basket": basket, "item": "x"})
            assert refused["isError"] and "belongs to another client" in text(refused)
            closing = await bob.call_tool("close", {"basket": basket})
            assert closing["isError"] and "belongs to another client" in text(closing)
            assert value(await alice.call_tool("add", {"basket": basket, "item": "y"})) == ["y"]
        with pytest.raises(HandleRefused, match="belongs to another client"):
            await running.handles.use(basket, None)  # a request that does not say who it comes from


async def test_an_expired_handle_is_refused_and_its_values_dropped(autojump_clock: MockClock) -> None:
    async with start_server(app) as running, modern(running) as client:
        basket = await open_basket_of(client, ttl=60)
        await trio.sleep(59)
        assert value(await client.call_tool("add", {"basket": basket, "item": "x"})) == ["x"]
        await trio.sleep(1)  # its lifetime ends: the handle ends with it, whether used or not
        await trio.testing.wait_all_tasks_blocked()
        assert await running.store.keys(basket) == [] and running.handle_ids() == []
        refused = await client.call_tool("add", {"basket": basket, "item": "y"})
        assert refused["isError"] and f"state handle {basket} is unknown, closed or expired" in text(refused)


async def test_a_handle_used_at_its_expiry_is_refused_as_expired(autojump_clock: MockClock) -> None:
    async with start_server(app) as running, modern(running) as client:
        basket = await open_basket_of(client, ttl=60)
        slot = running.handles.slots[basket]
        slot.expires = trio.current_time()  # as if its lifetime ended before the reaper noticed
        refused = await client.call_tool("add", {"basket": basket, "item": "y"})
        assert refused["isError"] and f"state handle {basket} has expired" in text(refused)
        assert await running.store.keys(basket) == [] and running.handle_ids() == []


async def test_an_unused_expired_handle_ends_on_its_own(autojump_clock: MockClock) -> None:
    async with start_server(app, handle_idle_timeout=3600) as running, modern(running) as client:
        basket = await open_basket_of(client, ttl=60)
        await trio.sleep(61)
        assert running.handle_ids() == [] and await running.store.keys(basket) == []


async def test_a_closed_handle_is_refused_and_its_values_dropped() -> None:
    async with start_server(app) as running, modern(running) as client:
        basket = await open_basket_of(client)
        await client.call_tool("add", {"basket": basket, "item": "x"})
        assert text(await client.call_tool("close", {"basket": basket})) == "closed"
        assert await running.store.keys(basket) == [] and running.handle_ids() == []
        refused = await client.call_tool("add", {"basket": basket, "item": "y"})
        assert refused["isError"] and "unknown, closed or expired" in text(refused)


# ---- lifetimes and stores -----------------------------------------------------------------------------


async def test_an_idle_handles_actor_stops_and_the_next_use_restarts_it(autojump_clock: MockClock) -> None:
    async with start_server(app, handle_idle_timeout=30) as running, modern(running) as client:
        basket = await open_basket_of(client)
        await client.call_tool("add", {"basket": basket, "item": "x"})
        await trio.sleep(29)
        await client.call_tool("add", {"basket": basket, "item": "y"})  # a use moves the deadline
        await trio.sleep(29)
        assert running.handle_ids() == [basket]
        await trio.sleep(2)
        assert running.handle_ids() == []  # the actor stopped; the values did not go
        assert value(await client.call_tool("add", {"basket": basket, "item": "z"})) == ["x", "y", "z"]
        assert running.handle_ids() == [basket]


async def two_lives(first: str | SessionStateStore, second: str | SessionStateStore) -> None:
    async with start_server(app, session_state_store=first) as running, modern(running) as client:
        basket = await open_basket_of(client)
        await client.call_tool("add", {"basket": basket, "item": "x"})
    async with start_server(app, session_state_store=second) as running, modern(running) as client:
        assert value(await client.call_tool("add", {"basket": basket, "item": "y"})) == ["x", "y"]
        async with modern(running, "client-b") as other:  # the owner was stored with the handle
            refused = await other.call_tool("add", {"basket": basket, "item": "z"})
            assert refused["isError"] and "belongs to another client" in text(refused)


async def test_a_restarted_server_carries_on_with_a_handle_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    await two_lives(url, url)


async def test_a_restarted_server_carries_on_with_a_handle_on_a_shared_store_object() -> None:
    store = MemorySessionStore()
    await two_lives(store, store)


async def test_two_nodes_on_one_redis_share_a_handle(redis_server: str, redis_prefix: str) -> None:
    with trio.fail_after(30):
        async with (
            RedisSessionStore(redis_server, prefix=redis_prefix) as store_a,
            RedisSessionStore(redis_server, prefix=redis_prefix) as store_b,
            start_server(app, session_state_store=store_a) as node_a,
            start_server(app, session_state_store=store_b) as node_b,
            modern(node_a) as on_a,
            modern(node_b) as on_b,
        ):
            basket = await open_basket_of(on_a)
            seen = []
            for client, item in [(on_b, "1"), (on_a, "2"), (on_b, "3")]:
                seen = value(await client.call_tool("add", {"basket": basket, "item": item}))
            assert seen == ["1", "2", "3"]
            assert text(await on_a.call_tool("close", {"basket": basket})) == "closed"
            refused = await on_b.call_tool("add", {"basket": basket, "item": "4"})  # closed on node A
            assert refused["isError"] and "unknown, closed or expired" in text(refused)


# ---- serving one era ----------------------------------------------------------------------------------


async def test_serving_the_handshake_era_only_refuses_2026_requests_naming_its_versions() -> None:
    async with start_server(app, protocol="2025-11-25") as running:
        async with modern(running) as client:
            with pytest.raises(JsonRpcError) as info:
                await client.request("server/discover")
            assert info.value.code == -32022
            assert info.value.data["supported"] == list(HANDSHAKE_VERSIONS)
        async with open_memory_client(running) as client:
            assert value(await client.call_tool("count")) == 1


async def test_serving_the_stateless_era_only_refuses_initialize() -> None:
    async with start_server(app, protocol="2026-07-28") as running:
        with pytest.raises(JsonRpcError) as info:
            async with open_memory_client(running):
                pass
        assert info.value.code == -32022 and info.value.data["supported"] == [MODERN]
        assert running.session_ids() == []
        async with modern(running) as client:
            basket = await open_basket_of(client)
            assert value(await client.call_tool("count", {"handle": basket})) == 1


async def test_an_unknown_protocol_choice_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol must be one of all, 2025-11-25, 2026-07-28"):
        async with start_server(app, protocol="2024-01-01"):
            pass


# ---- without a runtime: LocalEnv ----------------------------------------------------------------------


async def test_local_env_models_handles_for_unit_tests() -> None:
    env = LocalEnv(session_id=None, protocol_version=MODERN)
    opened = await handle_request(app, Request(1, "tools/call", {"name": "open_basket"}), env)
    basket = opened["content"][0]["text"]
    stores = env.handle_stores
    again = LocalEnv(session_id=None, protocol_version=MODERN, handle_stores=stores)
    added = await handle_request(
        app, Request(2, "tools/call", {"name": "add", "arguments": {"basket": basket, "item": "x"}}), again
    )
    assert added["structuredContent"] == {"result": ["x"]}
    stranger = LocalEnv(session_id=None, protocol_version=MODERN)
    refused = await handle_request(
        app, Request(3, "tools/call", {"name": "add", "arguments": {"basket": basket, "item": "x"}}), stranger
    )
    assert refused["isError"] and "unknown" in refused["content"][0]["text"]
    assert math.isfinite(len(stores))


async def test_a_handle_that_expires_while_its_actor_is_stopped_is_refused_as_expired(
    autojump_clock: MockClock,
) -> None:
    """Found by the property test: the deadline of a resumed handle is on trio's clock too."""
    async with start_server(app, handle_idle_timeout=30) as running, modern(running) as client:
        basket = await open_basket_of(client, ttl=100)
        await trio.sleep(120)  # its actor stopped at 30; its lifetime ended at 100
        assert running.handle_ids() == []
        refused = await client.call_tool("add", {"basket": basket, "item": "x"})
        assert refused["isError"] and f"state handle {basket} has expired" in text(refused)
        assert await running.store.keys(basket) == []


class RecordingStore(MemorySessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.ttls: dict[tuple[str, str], float | None] = {}

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.ttls[session_id, key] = ttl
        await super().put(session_id, key, value, ttl=ttl)


async def test_a_handles_values_are_stored_for_as_long_as_the_handle_lasts(autojump_clock: MockClock) -> None:
    store = RecordingStore()
    async with start_server(app, session_state_store=store) as running, modern(running) as client:
        basket = await open_basket_of(client, ttl=1000)
        assert store.ttls[basket, "__mcpvisor__/handle"] == 1000 and store.ttls[basket, "items"] == 1000
        await trio.sleep(400)
        await client.call_tool("add", {"basket": basket, "item": "x"})
        assert store.ttls[basket, "items"] == 600
    async with start_server(app, session_state_store=store) as running, open_memory_client(running) as other:
        await other.call_tool("count")
        assert store.ttls[other.session_id or "", "n"] is None  # a session's value: the store's default


async def test_max_handles_bounds_the_live_ones_with_a_tool_error() -> None:
    async with start_server(app, max_handles=1) as running, modern(running) as client:
        await open_basket_of(client)
        refused = await client.call_tool("open_basket")
        assert refused["isError"] and "too many state handles are live" in text(refused)
        assert len(running.handle_ids()) == 1


def test_the_owner_is_the_principal_when_there_is_one_else_the_clients_name() -> None:
    from mcpvisor.runtime.tree._request_env import owner_of

    assert owner_of({"name": "claude", "version": "1"}) == "client:claude"
    assert owner_of({"name": "claude", "version": "2"}) == "client:claude"  # an upgrade keeps its handles
    assert owner_of({"name": "claude"}, "user-7") == "principal:user-7"
    assert owner_of(None) is None and owner_of({"version": "1"}) is None


async def test_logs_and_supervision_events_never_show_a_handle(caplog: pytest.LogCaptureFixture) -> None:
    """A handle is a bearer secret where no owner is recorded: logs show its label only."""
    caplog.set_level(logging.DEBUG)
    async with start_server(app) as running, modern(running) as client:
        basket = await open_basket_of(client)
        await client.call_tool("add", {"basket": basket, "item": "x"})
        with pytest.raises(JsonRpcError):
            await client.call_tool("crash", {"handle": basket})
        await client.call_tool("close", {"basket": basket})
        events = [repr(e) for e in running.events]
    logged = [record.getMessage() for record in caplog.records]
    assert any(handle_label(basket) in line for line in logged)
    assert not any(basket in line for line in logged + events)


async def test_closing_a_string_that_is_no_handle_is_a_tool_error() -> None:
    async with start_server(app) as running, modern(running) as client:
        refused = await client.call_tool("close_by_name", {"name": "nope"})
        assert refused["isError"] and "is not a state handle this server minted" in text(refused)
        basket = await open_basket_of(client)
        assert text(await client.call_tool("close_by_name", {"name": basket})) == "closed"
        assert running.handle_ids() == []
