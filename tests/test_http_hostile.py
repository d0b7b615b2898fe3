"""Streamable HTTP: the inputs that killed stdio get a clean 4xx, and tools returning what JSON cannot
carry get a well-formed answer, in a JSON body and on an SSE stream, on both HTTP servers (issue 7)."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
import trio
from _hostile_app import HOSTILE_LINES, app
from _http_messages import BOTH, INIT, JSON_ONLY
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.http import serve_http

# our server on each request parser (the http_parser fixture), and hypercorn
pytestmark = [
    pytest.mark.parametrize("http_server", ["h11", "hypercorn"]),
    pytest.mark.usefixtures("http_parser"),
]


@asynccontextmanager
async def served(http_server: str) -> AsyncIterator[str]:
    async with start_server(app) as port, trio.open_nursery() as nursery:
        bound = await nursery.start(
            functools.partial(serve_http, port, port_number=0, server=http_server)  # type: ignore[arg-type]
        )
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


def strict_json(data: bytes) -> Any:
    """What a strict peer reads: UTF-8 that decodes, JSON without NaN."""
    return json.loads(data.decode("utf-8"), parse_constant=lambda c: pytest.fail(f"{c} on the wire"))


def sse_messages(data: bytes) -> list[Any]:
    """The JSON-RPC messages of a complete SSE body (events with data)."""
    out = []
    for event in data.decode("utf-8").split("\n\n"):
        lines = [line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")]
        if lines and "".join(lines):
            out.append(strict_json("\n".join(lines).encode()))
    return out


async def _open(client: httpx2.AsyncClient, url: str) -> dict[str, str]:
    init = await client.post(url, json=INIT, headers=JSON_ONLY)
    assert init.status_code == 200
    session = {"mcp-session-id": init.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await client.post(url, json=note, headers={**JSON_ONLY, **session})).status_code == 202
    return session


def _call(request_id: int, tool: str) -> bytes:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": {"progressToken": request_id}},
    }
    return json.dumps(body).encode()


async def test_hostile_bodies_get_400_with_a_parse_error(http_server: str) -> None:
    async with served(http_server) as url, httpx2.AsyncClient(timeout=20) as client:
        session = await _open(client, url)
        headers = {**JSON_ONLY, **session, "content-type": "application/json"}
        for line in HOSTILE_LINES:
            response = await client.post(url, content=line.encode("utf-8", "surrogatepass"), headers=headers)
            assert response.status_code == 400, (line[:80], response.status_code, response.content[:200])
            assert strict_json(response.content)["error"]["code"] == -32700
        answer = await client.post(url, content=_call(2, "counter"), headers=headers)
        assert strict_json(answer.content)["result"]["structuredContent"] == {"result": 1}


@pytest.mark.parametrize("accept", [JSON_ONLY, BOTH], ids=["json", "sse"])
async def test_tools_returning_what_json_cannot_carry_answer_well_formed(
    http_server: str, accept: dict[str, str]
) -> None:
    async with served(http_server) as url, httpx2.AsyncClient(timeout=20) as client:
        session = await _open(client, url)
        headers = {**accept, **session, "content-type": "application/json"}
        set_level = {"jsonrpc": "2.0", "id": 9, "method": "logging/setLevel", "params": {"level": "info"}}
        leveled = await client.post(url, json=set_level, headers={**JSON_ONLY, **session})
        assert leveled.json()["result"] == {}

        related: list[Any] = []

        async def final(request_id: int, tool: str) -> dict[str, Any]:
            response = await client.post(url, content=_call(request_id, tool), headers=headers)
            assert response.status_code == 200, response.content[:300]
            if response.headers["content-type"].startswith("text/event-stream"):
                messages = sse_messages(response.content)
            else:
                messages = [strict_json(response.content)]
            related.extend(
                m["params"].get("data", m["params"].get("message")) for m in messages if "method" in m
            )
            answers = [m for m in messages if m.get("id") == request_id and ("result" in m or "error" in m)]
            assert len(answers) == 1, messages
            return dict(answers[0])

        assert (await final(10, "surrogate_text"))["result"]["content"][0]["text"] == "before \ufffd after"
        structured = (await final(11, "surrogate_structured"))["result"]["structuredContent"]
        assert structured == {"text": "\ufffd", "\ufffd": "key"}
        assert (await final(12, "nan_structured"))["error"]["code"] == -32603
        assert (await final(13, "surrogate_log"))["result"]["content"][0]["text"] == "logged"
        if accept is BOTH:  # the log and the progress went out on the request's stream, repaired
            assert {"log \ufffd", "progress \ufffd"} <= set(related)
        assert (await final(14, "nan_progress"))["error"]["code"] == -32603
        assert (await final(15, "deep_result"))["error"]["code"] == -32603
        assert (await final(16, "counter"))["result"]["structuredContent"] == {"result": 1}


@pytest.mark.parametrize("last_event_id", ["1" * 5000 + "-1", "1-" + "1" * 5000])
async def test_a_last_event_id_too_long_for_int_is_not_ours(http_server: str, last_event_id: str) -> None:
    """``int()`` refuses more than 4,300 digits: such an id once answered 500 instead of being unknown."""
    async with served(http_server) as url, httpx2.AsyncClient(timeout=20) as client:
        session = await _open(client, url)
        headers = {**session, "accept": "text/event-stream", "last-event-id": last_event_id}
        async with client.stream("GET", url, headers=headers) as response:
            # not an id we issued: a fresh standalone stream, as for any unknown id
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
