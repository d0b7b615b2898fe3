"""SSE under pressure, over a real loopback socket: nothing but notifications may ever be dropped.

A POST's SSE stream keeps a bounded replay log. These tests fill it faster than the client reads: a
2025-03-26 batch whose answers outnumber the log, and a request that floods progress notifications
at a client that does not read. Every request must still get its answer, and what was dropped must
be counted.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
import trio
from _asgi_client import parse_sse
from mcpvisor.runtime.server import SERVER_BUSY, Context, Server, start_server
from mcpvisor.runtime.transports.http import serve_http

#: every test here runs on each request parser of our server (conftest.http_parser)
pytestmark = pytest.mark.usefixtures("http_parser")

app = Server("sse-pressure", "1.0.0")


@app.tool
def add(a: int, b: int) -> int:
    return a + b


#: Set by ``flood_then_ask`` once its flood is out, so the test knows the server wrote it all.
flooded: dict[str, trio.Event] = {}


@app.tool
async def flood_then_ask(ctx: Context, count: int, pad: int, tag: str) -> str:
    """``count`` progress notifications of ``pad`` bytes each, then a server-to-client request."""
    for i in range(count):
        await ctx.report_progress(i + 1, count, "x" * pad)
    flooded[tag].set()
    answer = await ctx.elicit("Still there?", {"type": "object", "properties": {"ok": {"type": "boolean"}}})
    return f"{count} sent, answer {answer['action']}"


SSE_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@asynccontextmanager
async def served(limits: dict[str, Any] | None = None, **options: Any) -> AsyncIterator[tuple[Any, str]]:
    async with start_server(app, **(limits or {})) as port, trio.open_nursery() as nursery:
        bound = await nursery.start(
            functools.partial(serve_http, port, port_number=0, **options)  # type: ignore[arg-type]
        )
        yield port, f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


async def open_session(
    client: httpx2.AsyncClient, url: str, version: str, capabilities: dict[str, Any] | None = None
) -> dict[str, str]:
    params = {
        "protocolVersion": version,
        "capabilities": capabilities or {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    opened = await client.post(url, json=init, headers={**SSE_HEADERS, "accept": "application/json"})
    assert opened.status_code == 200, opened.text
    headers = {**SSE_HEADERS, "mcp-session-id": opened.headers["mcp-session-id"]}
    if version != "2025-03-26":
        headers["mcp-protocol-version"] = version
    initialized = await client.post(
        url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    )
    assert initialized.status_code == 202
    return headers


def sse_messages(body: bytes) -> list[Any]:
    out: list[Any] = []
    for event in parse_sse(body):
        data = event.get("data")
        if data:
            decoded = json.loads(data)
            out.extend(decoded if isinstance(decoded, list) else [decoded])
    return out


async def test_a_batch_larger_than_the_replay_log_answers_every_request() -> None:
    # 2,000 answers into a log that keeps 1,024 events: the log must not evict an answer. (The queue
    # is raised so that no request is refused by the session's limit, tested below.)
    with trio.fail_after(60):
        async with (
            served({"max_queued_requests_per_session": 4096}) as (_, url),
            httpx2.AsyncClient(timeout=30) as client,
        ):
            headers = await open_session(client, url, "2025-03-26")
            batch = [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "tools/call",
                    "params": {"name": "add", "arguments": {"a": i, "b": 1}},
                }
                for i in range(1, 2001)
            ]
            response = await client.post(url, json=batch, headers=headers)
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            answers = {m["id"]: m for m in sse_messages(response.content) if "id" in m}
            assert sorted(answers) == list(range(1, 2001))
            assert all(answers[i]["result"]["structuredContent"] == {"result": i + 1} for i in answers)


async def test_a_reader_that_does_not_read_loses_only_counted_notifications() -> None:
    # 3,000 progress notifications of 2 KB (6 MB, more than the loopback socket buffers hold) at a
    # client that reads nothing until the handler has sent them all, then a server-to-client request.
    count = 3000
    flooded["slow-reader"] = trio.Event()
    with trio.fail_after(60):
        async with served(max_events_per_stream=64) as (port, url), httpx2.AsyncClient(timeout=30) as client:
            headers = await open_session(client, url, "2025-11-25", {"elicitation": {}})
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {
                    "name": "flood_then_ask",
                    "arguments": {"count": count, "pad": 2000, "tag": "slow-reader"},
                    "_meta": {"progressToken": "p"},
                },
            }
            async with client.stream("POST", url, json=call, headers=headers) as response:
                assert response.status_code == 200
                await flooded["slow-reader"].wait()  # the handler sent everything: now read
                buffer = b""
                progress = 0
                final: Any = None
                async for chunk in response.aiter_bytes():
                    buffer += chunk
                    *events, buffer = buffer.split(b"\n\n")
                    for message in sse_messages(b"\n\n".join(events)):
                        if message.get("method") == "notifications/progress":
                            progress += 1
                        elif message.get("method") == "elicitation/create":  # never dropped
                            answer = {"jsonrpc": "2.0", "id": message["id"], "result": {"action": "accept"}}
                            posted = await client.post(url, json=answer, headers=headers)
                            assert posted.status_code == 202
                        elif message.get("id") == 2:
                            final = message
            assert (
                final is not None and final["result"]["content"][0]["text"] == f"{count} sent, answer accept"
            )
            dropped = port.stats.notifications_dropped
            assert dropped > 0, "the reader was slow enough to lose some"
            assert progress + dropped == count  # every notification was delivered or counted


async def test_batch_items_over_the_request_limit_are_answered_with_server_busy() -> None:
    limits = {"max_requests_per_session": 1, "max_queued_requests_per_session": 9}
    with trio.fail_after(60):
        async with served(limits) as (port, url), httpx2.AsyncClient(timeout=30) as client:
            headers = await open_session(client, url, "2025-03-26")
            batch = [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "tools/call",
                    "params": {"name": "add", "arguments": {"a": i, "b": 1}},
                }
                for i in range(1, 201)
            ]
            response = await client.post(url, json=batch, headers=headers)
            answers = {m["id"]: m for m in sse_messages(response.content) if "id" in m}
            assert sorted(answers) == list(range(1, 201))  # every request answered, one way or the other
            busy = [i for i, m in answers.items() if "error" in m]
            assert all(answers[i]["error"]["code"] == SERVER_BUSY for i in busy)
            assert 0 < len(busy) == port.stats.requests_refused
            assert all(
                answers[i]["result"]["structuredContent"] == {"result": i + 1}
                for i in answers
                if i not in busy
            )
