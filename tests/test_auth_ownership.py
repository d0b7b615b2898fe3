"""Ownership under authorization, over real HTTP with the official SDK client (``mcp``): Alice's
session (2025-11-25), state handle (2026-07-28, SEP-2567) and tasks are invisible to Bob, who gets
the answers of ids that do not exist (404, not-found), never "forbidden"; Alice carries on. On both
HTTP servers (ours on h11, and hypercorn)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio
from _auth_app import RESOURCE, jwt_verifier, protected, settings
from _http_messages import INIT, JSON_ONLY, stateless, stateless_headers
from _identity_provider import IdentityProvider, identity_provider
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

EXT = "io.modelcontextprotocol/tasks"
POST = {**JSON_ONLY, "content-type": "application/json"}
SCOPES = ["mcp:use"]


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with identity_provider() as provider:
        yield provider


@pytest.fixture(params=["h11", "hypercorn"])
def http_server(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@asynccontextmanager
async def sdk_client(
    url: str, token: str, *, mode: str = "auto", session_override: list[str] | None = None
) -> AsyncIterator[tuple[Client, list[str]]]:
    """The official client with a bearer token; yields it and the session ids the server handed out.

    ``session_override`` (a one-item list, filled later) makes every request after the handshake
    present that session id instead of the client's own: how Bob tries Alice's session."""
    seen: list[str] = []

    async def record(response: httpx2.Response) -> None:
        sid = response.headers.get("mcp-session-id")
        if sid is not None and sid not in seen:
            seen.append(sid)

    async def hijack(request: httpx2.Request) -> None:
        if session_override and "mcp-session-id" in request.headers:
            request.headers["mcp-session-id"] = session_override[0]

    http = httpx2.AsyncClient(
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
        event_hooks={"response": [record], "request": [hijack]},
    )
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:  # type: ignore[arg-type]
        yield client, seen


def text(result: Any) -> str:
    assert not result.is_error, result
    value: str = result.content[0].text
    return value


async def test_alices_session_is_not_found_for_bob(idp: IdentityProvider, http_server: str) -> None:
    auth = settings(idp, jwt_verifier(idp), required_scopes=SCOPES)
    alice = idp.token("alice", audience=RESOURCE, scopes=SCOPES)
    bob = idp.token("bob", audience=RESOURCE, scopes=SCOPES)
    with trio.fail_after(60):
        async with (
            protected(auth, http_server=http_server) as url,
            sdk_client(url, alice, mode="legacy") as (alices, sessions),
            httpx2.AsyncClient(timeout=10) as raw,
        ):
            assert text(await alices.call_tool("counter", {})) == "count = 1 session"
            (sid,) = sessions
            as_bob = {**POST, "authorization": f"Bearer {bob}", "mcp-session-id": sid}
            as_bob["mcp-protocol-version"] = "2025-11-25"
            call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "counter"}}
            answer = await raw.post(url, json=call, headers=as_bob)
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["message"] == "Not Found: unknown or expired session"
            stream = await raw.get(url, headers={**as_bob, "accept": "text/event-stream"})
            assert stream.status_code == 404
            assert (await raw.delete(url, headers=as_bob)).status_code == 404
            # Exactly what an id that never existed gets: nothing tells Bob the session is real.
            never = await raw.post(url, json=call, headers={**as_bob, "mcp-session-id": "f" * 32})
            assert (never.status_code, never.json()) == (answer.status_code, answer.json())
            # Bob through the official client, presenting Alice's id after his own handshake.
            override = [sid]
            async with sdk_client(url, bob, mode="legacy", session_override=override) as (bobs, _):
                with pytest.raises(Exception):  # noqa: B017 - the SDK's own error for a 404 session
                    await bobs.call_tool("counter", {})
            # Alice's session is intact: the count carries on.
            assert text(await alices.call_tool("counter", {})) == "count = 2 session"


async def test_alices_handle_is_not_found_for_bob(idp: IdentityProvider, http_server: str) -> None:
    auth = settings(idp, jwt_verifier(idp))
    alice = idp.token("alice", audience=RESOURCE)
    bob = idp.token("bob", audience=RESOURCE)
    with trio.fail_after(60):
        async with (
            protected(auth, http_server=http_server) as url,
            sdk_client(url, alice) as (alices, _),
            sdk_client(url, bob) as (bobs, _),
        ):
            assert alices.protocol_version == "2026-07-28"
            first = text(await alices.call_tool("counter", {}))
            handle = first.removeprefix("count = 1 ")
            assert handle.startswith("sh_"), first
            refused = await bobs.call_tool("counter", {"handle": handle})
            assert refused.is_error
            never = await bobs.call_tool("counter", {"handle": "sh_" + "0" * 32})
            assert never.is_error
            # The same refusal as for a handle that never existed (only the id in it differs).
            assert refused.content[0].text.replace(handle, "?") == never.content[0].text.replace(
                "sh_" + "0" * 32, "?"
            )
            assert (
                "not found" in refused.content[0].text.lower() or "unknown" in refused.content[0].text.lower()
            )
            assert text(await alices.call_tool("counter", {"handle": handle})) == f"count = 2 {handle}"


def _task_call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = stateless("tools/call", {"name": tool, "arguments": arguments})
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {EXT: {}}}
    return body


def _task_get(task_id: str) -> dict[str, Any]:
    body = stateless("tasks/get", {"taskId": task_id})
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {EXT: {}}}
    return body


async def test_alices_tasks_are_not_found_for_bob(idp: IdentityProvider, http_server: str) -> None:
    auth = settings(idp, jwt_verifier(idp))
    alice = {
        "authorization": f"Bearer {idp.token('alice', audience=RESOURCE)}",
        "content-type": "application/json",
    }
    bob = {
        "authorization": f"Bearer {idp.token('bob', audience=RESOURCE)}",
        "content-type": "application/json",
    }
    with trio.fail_after(60):
        async with protected(auth, http_server=http_server) as url, httpx2.AsyncClient(timeout=10) as raw:
            # 2026-07-28: a stateless task belongs to its principal, not to "anyone stateless".
            created = await raw.post(
                url,
                json=_task_call("long_job", {"seconds": 0.0}),
                headers={**stateless_headers("tools/call", "long_job"), **alice},
            )
            assert created.status_code == 200, created.text
            task_id = created.json()["result"]["taskId"]
            headers = stateless_headers("tasks/get", task_id)
            mine = await raw.post(url, json=_task_get(task_id), headers={**headers, **alice})
            assert mine.json()["result"]["taskId"] == task_id
            theirs = await raw.post(url, json=_task_get(task_id), headers={**headers, **bob})
            never = await raw.post(
                url, json=_task_get("0" * 32), headers={**stateless_headers("tasks/get", "0" * 32), **bob}
            )
            assert theirs.json()["error"]["code"] == never.json()["error"]["code"] == -32602
            # 2025-11-25: a session's task; Bob cannot reach the session, nor see it from his own.
            opened = await raw.post(url, json=INIT, headers={**JSON_ONLY, **alice})
            sid = opened.headers["mcp-session-id"]
            in_alices = {**JSON_ONLY, **alice, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await raw.post(url, json=done, headers=in_alices)).status_code == 202
            call = {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "long_job", "arguments": {}, "task": {}},
            }
            session_task = (await raw.post(url, json=call, headers=in_alices)).json()["result"]["task"][
                "taskId"
            ]
            get = {"jsonrpc": "2.0", "id": 4, "method": "tasks/get", "params": {"taskId": session_task}}
            assert (await raw.post(url, json=get, headers=in_alices)).json()["result"][
                "taskId"
            ] == session_task
            as_bob = {**in_alices, **bob}
            assert (await raw.post(url, json=get, headers=as_bob)).status_code == 404
            bobs_session = await raw.post(url, json=INIT, headers={**JSON_ONLY, **bob})
            in_bobs = {**as_bob, "mcp-session-id": bobs_session.headers["mcp-session-id"]}
            assert (await raw.post(url, json=done, headers=in_bobs)).status_code == 202
            assert (await raw.post(url, json=get, headers=in_bobs)).json()["error"]["code"] == -32602


async def test_a_resumed_session_keeps_its_owner(idp: IdentityProvider, tmp_path: Path) -> None:
    """The owner is stored with the session's settings: after a restart on the same SQLite file, the
    session is still Alice's (Bob resuming it gets 404, and does not take it over)."""
    auth = settings(idp, jwt_verifier(idp))
    alice = {**POST, "authorization": f"Bearer {idp.token('alice', audience=RESOURCE)}"}
    bob = {**POST, "authorization": f"Bearer {idp.token('bob', audience=RESOURCE)}"}
    store = f"sqlite:///{tmp_path / 'state.db'}"
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "counter"}}
    with trio.fail_after(60):
        async with protected(auth, session_state_store=store) as url, httpx2.AsyncClient(timeout=10) as raw:
            opened = await raw.post(url, json=INIT, headers=alice)
            session = {
                "mcp-session-id": opened.headers["mcp-session-id"],
                "mcp-protocol-version": "2025-11-25",
            }
            done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await raw.post(url, json=done, headers={**alice, **session})).status_code == 202
            first = await raw.post(url, json=call, headers={**alice, **session})
            assert first.json()["result"]["content"][0]["text"] == "count = 1 session"
        async with protected(auth, session_state_store=store) as url, httpx2.AsyncClient(timeout=10) as raw:
            assert (await raw.post(url, json=call, headers={**bob, **session})).status_code == 404
            assert (await raw.delete(url, headers={**bob, **session})).status_code == 404
            again = await raw.post(url, json=call, headers={**alice, **session})
            assert again.json()["result"]["content"][0]["text"] == "count = 2 session"


async def test_tokens_and_session_ids_never_reach_the_log(
    idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    auth = settings(idp, jwt_verifier(idp), required_scopes=SCOPES)
    alice = idp.token("alice", audience=RESOURCE, scopes=SCOPES)
    bob = idp.token("bob", audience=RESOURCE, scopes=["other"])
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(60):
        async with (
            protected(auth) as url,
            sdk_client(url, alice, mode="legacy") as (alices, sessions),
            httpx2.AsyncClient(timeout=10) as raw,
        ):
            assert text(await alices.call_tool("counter", {})) == "count = 1 session"
            await raw.post(url, json=INIT, headers={**POST, "authorization": f"Bearer {bob}"})
            await raw.post(url, json=INIT, headers={**POST, "authorization": "Bearer not-a-token"})
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("mcpvisor"))
    assert "session s:" in logged  # the session was logged, by its label
    for secret in (alice, bob, "not-a-token", *sessions):
        assert secret not in logged
