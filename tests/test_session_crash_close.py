"""What a session that crashes keeps, and what its client is told (issue 7, items 6 and 16).

- A session closed for exceeding its restart intensity used to drop its values (on SQLite too: rows
  gone) while the error told the client to "retry". Now its values stay until their TTL, the error
  says the session was closed and what to do, and over Streamable HTTP the same session id re-opens it.
- An ``initialize`` that failed issued no session id, yet its error said the session was "being
  restarted under the same id, retry". Now it says no session was started: send initialize again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio
import trio.testing
from _http_messages import INIT, JSON_ONLY
from _runtime_app import app
from mcpvisor.backends import MemorySessionStore, SQLiteSessionStore, decode
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import UnknownSession, start_server
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.memory import open_memory_client
from mcpvisor.runtime.tree._session_settings import SETTINGS_KEY


def text_of(result: Mapping[str, Any]) -> str:
    return str(result["content"][0]["text"])


async def _crash_until_closed(running: Any, client: Any, intensity: int) -> str:
    """Crash the session ``intensity + 1`` times; the last error's text (the one that closed it)."""
    for _ in range(intensity):
        with pytest.raises(JsonRpcError, match="restarted under the same id"):
            await client.call_tool("crash")
    with pytest.raises(JsonRpcError) as info:
        await client.call_tool("crash")
    await trio.testing.wait_all_tasks_blocked()
    return info.value.message


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_a_session_closed_for_crashing_keeps_its_values(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = MemorySessionStore() if backend == "memory" else SQLiteSessionStore(path)
    try:
        async with (
            start_server(app, session_state_store=store, session_restart_intensity=1) as running,
            open_memory_client(running, close=False) as client,
        ):
            sid = client.session_id
            assert sid is not None
            assert text_of(await client.call_tool("counter")) == "1"
            closed = await _crash_until_closed(running, client, 1)
            assert "was closed" in closed and "more than 1 times" in closed
            assert "kept until they expire" in closed
            assert "retry" not in closed and "restarted under" not in closed
            assert not running.has_session(sid)
            with pytest.raises(UnknownSession):
                await client.call_tool("counter")
            assert await store.keys(sid) == sorted(["n", SETTINGS_KEY])  # nothing dropped
            # the id can be taken up again (what the HTTP transport does for a request naming it)
            assert await running.resume_session(sid)
            assert text_of(await client.call_tool("counter")) == "2"
    finally:
        await store.aclose()
    if backend == "sqlite":  # the rows are in the file, for an operator to inspect
        async with SQLiteSessionStore(path) as reopened:
            value = await reopened.get(sid, "n")
            assert value is not None and decode(value) == 2


async def test_a_crash_message_says_what_happened_and_that_the_request_may_be_sent_again() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("crash")
    text = info.value.message
    assert "session crashed (CrashSession)" in text
    assert "restarted under the same id" in text and "did not complete" in text


async def test_an_intensity_closed_session_reopens_over_http_with_its_values() -> None:
    """The close message promises that the same Mcp-Session-Id re-opens the session: it does."""
    with trio.fail_after(30):
        async with start_server(app, session_restart_intensity=0) as running, trio.open_nursery() as nursery:
            bound = await nursery.start(functools.partial(serve_http, running, port_number=0))
            url = f"http://127.0.0.1:{bound}/mcp"
            async with httpx2.AsyncClient() as http:
                init = await http.post(url, json=INIT, headers=JSON_ONLY)
                session = {**JSON_ONLY, "mcp-session-id": init.headers["mcp-session-id"]}
                note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                assert (await http.post(url, json=note, headers=session)).status_code == 202

                def call(request_id: int, name: str) -> dict[str, Any]:
                    params = {"name": name}
                    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}

                first = await http.post(url, json=call(2, "counter"), headers=session)
                assert first.json()["result"]["content"][0]["text"] == "1"
                crashed = await http.post(url, json=call(3, "crash"), headers=session)
                message = crashed.json()["error"]["message"]
                assert "was closed" in message and "Mcp-Session-Id" in message
                await trio.testing.wait_all_tasks_blocked()
                again = await http.post(url, json=call(4, "counter"), headers=session)
                assert again.status_code == 200
                assert again.json()["result"]["content"][0]["text"] == "2"
            nursery.cancel_scope.cancel()


class SettingsFailStore(MemorySessionStore):
    """A store that cannot write a session's settings: every ``initialize`` fails."""

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        if key == SETTINGS_KEY:
            raise OSError("disk full")
        await super().put(session_id, key, value, ttl=ttl)


async def test_a_failed_initialize_says_no_session_was_started() -> None:
    async with (
        start_server(app, session_state_store=SettingsFailStore()) as running,
        open_memory_client(running, initialize=False) as client,
    ):
        with pytest.raises(JsonRpcError) as info:
            await client.initialize()
    text = info.value.message
    assert "initialize failed" in text and "no session was started" in text
    assert "send initialize again" in text
    assert "restarted under the same id" not in text and "retry" not in text


async def test_a_failed_initialize_over_http_issues_no_id_and_says_so() -> None:
    with trio.fail_after(30):
        async with (
            start_server(app, session_state_store=SettingsFailStore()) as running,
            trio.open_nursery() as nursery,
        ):
            bound = await nursery.start(functools.partial(serve_http, running, port_number=0))
            async with httpx2.AsyncClient() as http:
                reply = await http.post(f"http://127.0.0.1:{bound}/mcp", json=INIT, headers=JSON_ONLY)
            nursery.cancel_scope.cancel()
    assert "mcp-session-id" not in reply.headers
    message = reply.json()["error"]["message"]
    assert "no session was started" in message and "send initialize again" in message
    assert "restarted under the same id" not in message
