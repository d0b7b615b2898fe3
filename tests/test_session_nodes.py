"""The rules of a session on a shared store (``_shared_session``), in one process: two servers on one
store object stand for two nodes (the real-process scenarios are in test_session_nodes_process.py).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio
from _runtime_app import app
from mcpvisor.backends import MemorySessionStore, decode
from mcpvisor.runtime.server import UnknownSession, start_server
from mcpvisor.runtime.transports.memory import open_memory_client
from mcpvisor.runtime.tree._session_settings import SETTINGS_KEY
from mcpvisor.runtime.tree._shared_session import SessionEnded, change_settings, is_live


async def two_nodes(stack: AsyncExitStack, store: MemorySessionStore, **options: Any) -> tuple[Any, Any]:
    a = await stack.enter_async_context(
        start_server(app, session_state_store=store, shared_state_store=True, **options)
    )
    b = await stack.enter_async_context(
        start_server(app, session_state_store=store, shared_state_store=True, **options)
    )
    return a, b


async def test_a_delete_leaves_a_tombstone_that_ends_the_live_actor_on_the_other_node() -> None:
    store = MemorySessionStore()
    async with AsyncExitStack() as stack:
        a, b = await two_nodes(stack, store)
        client = await stack.enter_async_context(open_memory_client(a, close=False))
        sid = client.session_id
        assert sid is not None
        assert (await client.call_tool("counter"))["structuredContent"]["result"] == 1
        assert await b.resume_session(sid)  # a live actor for it on b too
        slot = b.sessions.slots[sid]
        await a.close_session(sid)
        record = await store.get(sid, SETTINGS_KEY)
        assert record is not None and not is_live(record)
        assert decode(record) == {"ended": "closed by the client"}
        assert await store.keys(sid) == [SETTINGS_KEY]  # the values went, the tombstone stays
        # b's actor is still up: its next request finds the tombstone and is refused, never served.
        assert b.has_session(sid)
        client.port = b
        with pytest.raises(UnknownSession):
            await client.call_tool("counter")
        await slot.done.wait()
        assert not b.has_session(sid)
        assert not await b.resume_session(sid)
        assert await store.keys(sid) == [SETTINGS_KEY]  # b wrote nothing back


async def test_a_settings_write_never_overwrites_a_tombstone() -> None:
    store = MemorySessionStore()
    async with AsyncExitStack() as stack:
        a, b = await two_nodes(stack, store)
        client = await stack.enter_async_context(open_memory_client(a, close=False))
        sid = client.session_id
        assert sid is not None and await b.resume_session(sid)
        live = await store.get(sid, SETTINGS_KEY)
        assert live is not None
        await a.close_session(sid)
        tomb = await store.get(sid, SETTINGS_KEY)
        # What b's actor would write for a setLevel it ran before noticing the DELETE.
        with pytest.raises(SessionEnded):
            await change_settings(b.store, b.sessions.slots[sid], fields={"log_level": "debug"})
        assert await store.get(sid, SETTINGS_KEY) == tomb


async def test_an_idle_stop_on_a_shared_store_keeps_the_values_and_the_session() -> None:
    store = MemorySessionStore()
    async with AsyncExitStack() as stack:
        a, b = await two_nodes(stack, store, session_idle_timeout=0.5)
        client = await stack.enter_async_context(open_memory_client(a, close=False))
        sid = client.session_id
        assert sid is not None
        await client.call_tool("counter")
        a_slot = a.sessions.slots[sid]
        client.port = b
        assert await b.resume_session(sid)  # what the HTTP transport does for an id it does not hold
        with trio.fail_after(10):
            while not a_slot.done.is_set():  # a's actor goes idle while b serves the session
                assert (await client.call_tool("counter"))["isError"] is False
                await trio.sleep(0.1)
        assert not a.has_session(sid)
        assert is_live(await store.get(sid, SETTINGS_KEY))
        count = (await client.call_tool("counter"))["structuredContent"]["result"]
        client.port = a
        assert await a.resume_session(sid)
        assert (await client.call_tool("counter"))["structuredContent"]["result"] == count + 1


@pytest.mark.parametrize("shared", [False, True])
async def test_the_record_check_costs_one_store_read_per_request_only_on_a_shared_store(shared: bool) -> None:
    async with (
        start_server(app, session_state_store=MemorySessionStore(), shared_state_store=shared) as running,
        open_memory_client(running) as client,
    ):
        await client.call_tool("version")  # the first request refreshes the record (an update)
        before = running.store.operations
        for _ in range(10):
            await client.call_tool("version")  # a tool that touches no state
        assert running.store.operations - before == (10 if shared else 0)


async def test_a_memory_store_idle_close_still_drops_the_values() -> None:
    store = MemorySessionStore()
    async with start_server(app, session_state_store=store, session_idle_timeout=0.3) as running:
        async with open_memory_client(running, close=False) as client:
            sid = client.session_id
            assert sid is not None
            await client.call_tool("counter")
            slot = running.sessions.slots[sid]
        with trio.fail_after(10):
            await slot.done.wait()
        assert await store.keys(sid) == []
