"""A session outlives its server process when its values are in a durable or shared store.

The server restarted on the same SQLite file (or another node on the same Redis) receives a request for a
session id it never started: it finds the session's negotiated settings in the store, starts a
SessionActor that carries on from them (handshake done), and the client sees its values. A session that
ended (closed, idle, dropped) is not brought back: its settings went with its values.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio
import trio.testing
from _http_messages import INIT
from _runtime_app import app
from _sup_children import autojump_clock
from mcpvisor.backends import MemorySessionStore, RedisSessionStore, SessionStateStore
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.memory import open_memory_client
from trio.testing import MockClock

__all__ = ["autojump_clock"]

JSON_ONLY = {"accept": "application/json"}


def text_of(result: Any) -> str:
    return str(result["content"][0]["text"])


async def first_life(store: SessionStateStore, *, protocol_version: str = "2025-06-18") -> str:
    """A server that starts a session, counts to 2, and shuts down without closing the session."""
    async with (
        start_server(app, session_state_store=store) as running,
        open_memory_client(running, protocol_version=protocol_version, close=False) as client,
    ):
        await client.call_tool("counter")
        await client.call_tool("counter")
        assert client.session_id is not None
        return client.session_id


@asynccontextmanager
async def resumed_client(running: Any, session_id: str) -> AsyncIterator[Any]:
    async with open_memory_client(running, initialize=False, close=False) as client:
        client.session_id = session_id
        yield client


async def test_a_restarted_server_resumes_the_session_with_its_values_and_settings() -> None:
    store = MemorySessionStore()  # an object: it outlives both servers, as a file or Redis would
    sid = await first_life(store)
    async with start_server(app, session_state_store=store) as running:
        assert not running.has_session(sid)
        assert await running.resume_session(sid)
        assert running.has_session(sid) and running.session_ids() == [sid]
        async with resumed_client(running, sid) as client:
            assert text_of(await client.call_tool("counter")) == "3"
            assert text_of(await client.call_tool("version")) == "2025-06-18"  # negotiated, not latest
        assert await running.resume_session(sid)  # already live: nothing more to do
        assert running.session_incarnations(sid) == 1


class CountingStore(MemorySessionStore):
    gets = 0

    async def get(self, session_id: str, key: str) -> bytes | None:
        self.gets += 1
        return await super().get(session_id, key)


async def test_unknown_closed_and_disabled_sessions_are_not_resumed() -> None:
    store = CountingStore()
    sid = await first_life(store)
    async with start_server(app, session_state_store=store, resume_sessions=False) as running:
        assert not await running.resume_session(sid)
        assert not running.has_session(sid)
    async with start_server(app, session_state_store=store) as running:
        assert not await running.resume_session("0" * 32)
        looked_up = store.gets
        for junk in ["x" * 500, "", "../etc", "0" * 31, "G" * 32]:  # never one of ours: not looked up
            assert not await running.resume_session(junk)
        assert store.gets == looked_up
        assert await running.resume_session(sid)
        await running.close_session(sid)  # the client ends it: its settings go with its values
        assert not await running.resume_session(sid)
    async with start_server(app, session_state_store=store) as running:
        assert not await running.resume_session(sid)


async def test_concurrent_requests_for_one_session_resume_it_once() -> None:
    store = MemorySessionStore()
    sid = await first_life(store)
    answers: list[bool] = []
    async with start_server(app, session_state_store=store) as running:

        async def resume() -> None:
            answers.append(await running.resume_session(sid))

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(resume)
        assert answers == [True] * 5
        assert running.session_ids() == [sid] and running.session_incarnations(sid) == 1


async def test_a_resumed_session_keeps_its_negotiated_idle_lifetime(autojump_clock: MockClock) -> None:
    store = MemorySessionStore()
    capabilities = {"experimental": {"io.mcpvisor/idleTimeout": {"seconds": 20}}}
    async with (
        start_server(app, session_state_store=store) as running,
        open_memory_client(running, capabilities=capabilities, close=False) as client,
    ):
        sid = client.session_id
        assert sid is not None
        await client.call_tool("counter")
    async with start_server(app, session_state_store=store) as running:
        assert await running.resume_session(sid)
        await trio.sleep(10)
        assert running.has_session(sid)
        await trio.sleep(20)  # the server's default is 30 minutes: only the negotiated 20 s ends it
        assert not running.has_session(sid)
        assert await store.get(sid, "n") is None  # an idle end drops the values


# ---- over Streamable HTTP, across a real server restart on one SQLite file ------------------------


@asynccontextmanager
async def served(db: Path | SessionStateStore) -> AsyncIterator[str]:
    store = f"sqlite:///{db}" if isinstance(db, Path) else db
    async with (
        start_server(app, session_state_store=store) as port,
        trio.open_nursery() as nursery,
    ):
        bound = await nursery.start(functools.partial(serve_http, port, port_number=0))  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


def call(request_id: int, name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name}}


async def test_http_client_carries_on_after_the_server_restarts(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with trio.fail_after(30):
        async with served(db) as url, httpx2.AsyncClient() as client:
            init = await client.post(url, json=INIT, headers=JSON_ONLY)
            assert init.status_code == 200
            session = {**JSON_ONLY, "mcp-session-id": init.headers["mcp-session-id"]}
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await client.post(url, json=note, headers=session)).status_code == 202
            first = await client.post(url, json=call(2, "counter"), headers=session)
            assert text_of(first.json()["result"]) == "1"
        async with served(db) as url, httpx2.AsyncClient() as client:
            again = await client.post(url, json=call(3, "counter"), headers=session)
            assert again.status_code == 200 and text_of(again.json()["result"]) == "2"
            stranger = {**JSON_ONLY, "mcp-session-id": "f" * 32}
            assert (await client.post(url, json=call(4, "counter"), headers=stranger)).status_code == 404
            assert (await client.delete(url, headers=session)).status_code == 200
        async with served(db) as url, httpx2.AsyncClient() as client:
            gone = await client.post(url, json=call(5, "counter"), headers=session)
            assert gone.status_code == 404  # DELETE ended it for good


@pytest.mark.parametrize("method", ["get", "delete"])
async def test_get_and_delete_also_resume(tmp_path: Path, method: str) -> None:
    db = tmp_path / "state.db"
    with trio.fail_after(30):
        async with served(db) as url, httpx2.AsyncClient() as client:
            init = await client.post(url, json=INIT, headers=JSON_ONLY)
            session_id = init.headers["mcp-session-id"]
        async with served(db) as url, httpx2.AsyncClient() as client:
            headers = {"mcp-session-id": session_id, "accept": "text/event-stream"}
            if method == "delete":
                assert (await client.delete(url, headers=headers)).status_code == 200
            else:
                async with client.stream("GET", url, headers=headers) as stream:
                    assert stream.status_code == 200


async def test_two_nodes_on_one_redis_serve_one_session(redis_server: str, redis_prefix: str) -> None:
    """No sticky routing needed: node B resumes a session node A started; both share its values."""
    with trio.fail_after(30):
        async with (
            RedisSessionStore(redis_server, prefix=redis_prefix) as store_a,
            RedisSessionStore(redis_server, prefix=redis_prefix) as store_b,
            served(store_a) as node_a,
            served(store_b) as node_b,
            httpx2.AsyncClient() as client,
        ):
            init = await client.post(node_a, json=INIT, headers=JSON_ONLY)
            session = {**JSON_ONLY, "mcp-session-id": init.headers["mcp-session-id"]}
            counts = []
            for request_id, node in enumerate([node_a, node_b, node_a, node_b], start=2):
                answer = await client.post(node, json=call(request_id, "counter"), headers=session)
                assert answer.status_code == 200, answer.text
                counts.append(text_of(answer.json()["result"]))
            assert counts == ["1", "2", "3", "4"]
