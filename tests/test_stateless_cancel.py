"""2026-07-28 cancellation: over Streamable HTTP, closing the response is the cancellation of the request.

"Closing the SSE response stream MUST be treated by the server as cancellation of that request ... The
server SHOULD stop work on the cancelled request as soon as practical and MUST NOT send any further
messages for it." There is no session to resume in, so a request whose client left has nobody to answer.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import trio
import trio.testing
from _http_messages import stateless, stateless_headers
from mcpvisor.runtime.protocol import Message, Request
from mcpvisor.runtime.server import Context, RunningServer, Server, start_server
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.stdio import serve_stdio

app = Server("cancel")
#: what the ``slow`` tool saw: "started", then "cancelled" or "finished" (which also set ``ended``)
seen: list[str] = []
started = trio.Event()
ended = trio.Event()


def reset() -> None:
    global ended
    seen.clear()
    ended = trio.Event()


@app.tool
async def slow(ctx: Context, seconds: float = 60.0, progress: bool = False) -> str:
    global started
    seen.append("started")
    started.set()
    started = trio.Event()
    try:
        if progress:
            await ctx.report_progress(0, 1)  # the answer becomes an SSE stream
        await trio.sleep(seconds)
    except trio.Cancelled:
        seen.append("cancelled")
        ended.set()
        raise
    seen.append("finished")
    ended.set()
    return "done"


def slow_call(**arguments: Any) -> dict[str, Any]:
    body = stateless("tools/call", {"name": "slow", "arguments": arguments})
    if arguments.get("progress"):
        body["params"]["_meta"]["progressToken"] = "p"
    return body


async def wait_ended() -> None:
    with trio.fail_after(10):
        await ended.wait()


async def test_cancel_stateless_stops_the_handler_and_sends_nothing() -> None:
    reset()
    async with start_server(app) as running:
        send, receive = trio.open_memory_channel[Message](math.inf)
        await running.submit(None, Request(1, "tools/call", slow_call()["params"]), send)
        await started.wait()
        running.cancel_stateless(send)
        with trio.fail_after(5):
            assert [m async for m in receive] == []  # closed with no reply: nobody is listening
        assert seen == ["started", "cancelled"]
        running.cancel_stateless(send)  # done: a no-op
        # the server still serves
        send2, receive2 = trio.open_memory_channel[Message](math.inf)
        await running.submit(None, Request(2, "tools/call", slow_call(seconds=0)["params"]), send2)
        replies = [m async for m in receive2]
        assert len(replies) == 1 and replies[0].result["content"][0]["text"] == "done"  # type: ignore[union-attr]


@asynccontextmanager
async def served() -> AsyncIterator[tuple[RunningServer, str]]:
    async with start_server(app) as port, trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(serve_http, port, port_number=0))  # type: ignore[arg-type]
        yield port, f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


async def test_closing_a_json_response_cancels_the_request() -> None:
    reset()
    async with served() as (running, url), httpx2.AsyncClient() as client:
        with trio.move_on_after(0.5):  # the client gives up: its connection closes
            await client.post(url, json=slow_call(), headers=stateless_headers("tools/call", "slow"))
        await wait_ended()
        assert seen == ["started", "cancelled"]
        assert running.stats.requests_abandoned == 1


async def test_closing_an_sse_response_cancels_the_request() -> None:
    reset()
    headers = {**stateless_headers("tools/call", "slow"), "accept": "application/json, text/event-stream"}
    async with served() as (running, url), httpx2.AsyncClient() as client:
        async with client.stream("POST", url, json=slow_call(progress=True), headers=headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if "notifications/progress" in line:
                    break  # the stream is open and flowing: now walk away
        await wait_ended()
        assert seen == ["started", "cancelled"]
        assert running.stats.requests_abandoned == 1


async def test_a_request_that_finishes_is_not_cancelled() -> None:
    reset()
    async with served() as (running, url), httpx2.AsyncClient() as client:
        answer = await client.post(
            url, json=slow_call(seconds=0.05), headers=stateless_headers("tools/call", "slow")
        )
        assert answer.status_code == 200 and answer.json()["result"]["content"][0]["text"] == "done"
        assert seen == ["started", "finished"]
        assert running.stats.requests_abandoned == 0


async def test_notifications_cancelled_cancels_a_stateless_request_over_stdio() -> None:
    """On stdio the 2026-07-28 client still cancels with ``notifications/cancelled`` naming the id."""
    reset()
    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()

    async def send(message: dict[str, Any]) -> None:
        await stdin_send.send_all(json.dumps(message).encode() + b"\n")

    with trio.fail_after(10):
        async with start_server(app) as running, trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
            )
            await send({**slow_call(), "id": "w"})
            await started.wait()
            await send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "w"}})
            await ended.wait()
            assert seen == ["started", "cancelled"]
            await send({**slow_call(seconds=0), "id": "next"})
            buffer = b""
            while b"\n" not in buffer:
                buffer += await stdout_receive.receive_some()
            first = json.loads(buffer.split(b"\n")[0])
            assert first["id"] == "next"  # nothing was sent for the cancelled request
            await stdin_send.aclose()
