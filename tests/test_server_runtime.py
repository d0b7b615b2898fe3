"""The server runtime end to end, in memory: lifecycle, cancellation, crashes, restarts, idle expiry."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from _runtime_app import app
from mcpvisor.backends import MemorySessionStore
from mcpvisor.runtime.protocol import (
    HANDSHAKE_VERSIONS,
    ErrorResponse,
    JsonRpcError,
    Message,
    Notification,
    Request,
    Response,
)
from mcpvisor.runtime.server import SessionBusy, UnknownSession, start_server
from mcpvisor.runtime.transports.memory import open_memory_client


def text_of(result: Mapping[str, Any]) -> str:
    return str(result["content"][0]["text"])


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS)
async def test_handshake_lifecycle_every_version(version: str) -> None:
    async with start_server(app) as running, open_memory_client(running, protocol_version=version) as client:
        assert client.initialize_result is not None
        assert client.initialize_result["protocolVersion"] == version
        assert client.initialize_result["serverInfo"]["name"] == "runtime-tests"
        assert await client.request("ping") == {}
        tools = await client.request("tools/list")
        assert {"counter", "crash", "wait"} <= {t["name"] for t in tools["tools"]}
        assert text_of(await client.call_tool("counter")) == "1"
        assert text_of(await client.call_tool("version")) == version
        assert running.session_ids() == [client.session_id]
    assert running.session_ids() == []


async def test_requests_before_initialize_and_without_session() -> None:
    async with start_server(app) as running:
        async with open_memory_client(running, initialize=False) as client:
            client.session_id = await running.create_session()
            assert await client.request("ping") == {}  # ping is served before initialize
            with pytest.raises(JsonRpcError) as info:
                await client.request("tools/list")
            assert info.value.code == -32600 and "not initialized" in info.value.message
        async with open_memory_client(running, initialize=False) as client:
            with pytest.raises(JsonRpcError) as info:
                await client.request("tools/list")  # no session id, no 2026 envelope
            assert info.value.code == -32600 and "no session id" in info.value.message


async def test_stateless_requests() -> None:
    async with start_server(app) as running:
        async with open_memory_client(running, protocol_version="2026-07-28") as client:
            listed = await client.request("tools/list")
            assert listed["resultType"] == "complete" and listed["ttlMs"] == 0
            assert listed["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "runtime-tests"
            assert text_of(await client.call_tool("version")) == "2026-07-28"
            with pytest.raises(JsonRpcError) as info:
                await client.call_tool("counter")
            assert info.value.code == -32603
            assert "state is not available for this stateless (2026-07-28) request" in info.value.message
            assert "StateHandle" in info.value.message and "ctx.open_handle()" in info.value.message
            with pytest.raises(JsonRpcError) as info:
                await client.request("ping")
            assert info.value.code == -32601
        assert running.session_ids() == []


async def test_unsupported_stateless_version_is_32022() -> None:
    async with (
        start_server(app) as running,
        open_memory_client(running, protocol_version="2026-07-28") as client,
    ):
        with pytest.raises(JsonRpcError) as info:
            await client.request(
                "tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}}
            )
        assert info.value.code == -32022


async def test_cancelled_request_gets_no_reply_and_session_lives() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        send, receive = trio.open_memory_channel[Message](math.inf)
        assert client.session_id is not None
        await running.submit(client.session_id, Request("slow-1", "tools/call", {"name": "wait"}), send)
        await trio.testing.wait_all_tasks_blocked()
        await client.cancel("slow-1", "changed my mind")
        received = [m async for m in receive]  # the runtime closes the stream
        assert not any(isinstance(m, Response | ErrorResponse) for m in received)
        assert text_of(await client.call_tool("counter")) == "1"
        assert running.session_incarnations(client.session_id) == 1


async def test_handler_crash_is_32603_for_that_request_only() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        await client.call_tool("counter")
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("fail")
        assert info.value.code == -32603 and "secret" not in info.value.message
        assert text_of(await client.call_tool("counter")) == "2"
        assert client.session_id is not None
        assert running.session_incarnations(client.session_id) == 1


async def test_crash_session_restarts_same_id_with_values_and_version() -> None:
    async with (
        start_server(app) as running,
        open_memory_client(running, protocol_version="2025-06-18") as client,
        open_memory_client(running) as other,
    ):
        sid = client.session_id
        assert sid is not None and other.session_id is not None
        await client.call_tool("counter")
        await client.call_tool("counter")
        await other.call_tool("counter")
        # an in-flight request on the crashing session gets a final -32603
        send, receive = trio.open_memory_channel[Message](math.inf)
        await running.submit(sid, Request("inflight", "tools/call", {"name": "wait"}), send)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("crash")
        assert info.value.code == -32603
        finals = [m for m in [m async for m in receive] if isinstance(m, ErrorResponse)]
        assert len(finals) == 1 and finals[0].id == "inflight" and finals[0].error.code == -32603
        # same id, values kept, negotiated version kept
        assert running.has_session(sid)
        assert text_of(await client.call_tool("counter")) == "3"
        assert text_of(await client.call_tool("version")) == "2025-06-18"
        assert running.session_incarnations(sid) == 2
        # the other session was untouched
        assert running.session_incarnations(other.session_id) == 1
        assert text_of(await other.call_tool("counter")) == "2"


async def test_restart_intensity_exceeded_closes_only_that_session() -> None:
    store = MemorySessionStore()
    async with (
        start_server(app, session_state_store=store, session_restart_intensity=1) as running,
        open_memory_client(running, close=False) as client,
        open_memory_client(running) as other,
    ):
        sid = client.session_id
        assert sid is not None
        await client.call_tool("counter")
        with pytest.raises(JsonRpcError, match="restarted under the same id"):
            await client.call_tool("crash")
        with pytest.raises(JsonRpcError, match="was closed: it crashed more than 1 times"):
            await client.call_tool("crash")
        await trio.testing.wait_all_tasks_blocked()
        assert not running.has_session(sid)
        assert running.session_ids() == [other.session_id]
        with pytest.raises(UnknownSession):
            await client.call_tool("counter")
        assert await store.keys(sid) != []  # kept until their TTL (test_session_crash_close.py)
        assert text_of(await other.call_tool("counter")) == "1"


async def test_flooded_mailbox_is_session_busy() -> None:
    async with start_server(app, mailbox_size=3) as running, open_memory_client(running) as client:
        assert client.session_id is not None
        note = Notification("notifications/roots/list_changed")
        with pytest.raises(SessionBusy) as info:
            for _ in range(10):  # submit does not yield, so the actor cannot drain in between
                await running.submit(client.session_id, note)
        assert info.value.session_id == client.session_id and info.value.retry_after > 0
        await trio.testing.wait_all_tasks_blocked()
        assert text_of(await client.call_tool("counter")) == "1"  # busy, not broken


def test_idle_sessions_expire_and_drop_values() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> None:
        store = MemorySessionStore()
        async with start_server(app, session_state_store=store, session_idle_timeout=60) as running:
            short_caps = {"experimental": {"io.mcpvisor/idleTimeout": {"seconds": 10}}}
            async with (
                open_memory_client(running, capabilities=short_caps, close=False) as short,
                open_memory_client(running, close=False) as long,
            ):
                assert short.initialize_result is not None
                granted = short.initialize_result["capabilities"]["experimental"]["io.mcpvisor/idleTimeout"]
                assert granted == {"seconds": 10}
                await short.call_tool("counter")
                await long.call_tool("counter")
                assert short.session_id is not None and long.session_id is not None
                await trio.sleep(9)
                assert running.has_session(short.session_id)
                await trio.sleep(2)
                assert not running.has_session(short.session_id)
                assert await store.keys(short.session_id) == []
                assert running.has_session(long.session_id)
                await long.call_tool("counter")  # activity pushes the deadline
                await trio.sleep(59)
                assert running.has_session(long.session_id)
                await trio.sleep(2)
                assert not running.has_session(long.session_id)
                assert await store.keys(long.session_id) == []

    trio.run(main, clock=clock)
