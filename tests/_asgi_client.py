"""A tiny in-process ASGI client: drives an app with one request, no sockets.

`open_request` yields a live response whose body chunks arrive as the app sends them (for SSE), and
`disconnect()` simulates the client going away; `request` collects the whole response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

App = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


@attrs.define(eq=False)
class LiveResponse:
    status: int
    headers: dict[str, str]
    _chunks: trio.MemoryReceiveChannel[bytes]
    _gone: trio.Event
    done: trio.Event
    buffer: bytes = b""

    async def read_all(self) -> bytes:
        async for chunk in self._chunks:
            self.buffer += chunk
        return self.buffer

    async def next_event(self) -> dict[str, str] | None:
        """The next SSE event as {field: value}; None when the body ended."""
        while b"\n\n" not in self.buffer:
            try:
                self.buffer += await self._chunks.receive()
            except trio.EndOfChannel:
                return None
        raw, self.buffer = self.buffer.split(b"\n\n", 1)
        return parse_event(raw)

    def disconnect(self) -> None:
        self._gone.set()


def parse_event(raw: bytes) -> dict[str, str]:
    event: dict[str, str] = {}
    for line in raw.decode().split("\n"):
        name, _, value = line.partition(":")
        event[name] = value[1:] if value.startswith(" ") else value
    return event


def parse_sse(body: bytes) -> list[dict[str, str]]:
    return [parse_event(raw) for raw in body.split(b"\n\n") if raw.strip()]


def sse_messages(body: bytes) -> list[Any]:
    return [json.loads(e["data"]) for e in parse_sse(body) if e.get("data")]


@asynccontextmanager
async def open_request(
    app: App,
    method: str,
    path: str = "/mcp",
    *,
    headers: dict[str, str] | None = None,
    body: bytes | dict[str, Any] | list[Any] = b"",
) -> AsyncIterator[LiveResponse]:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers = {"content-type": "application/json", **(headers or {})}
    all_headers = {"host": "127.0.0.1:8000", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
    }
    gone = trio.Event()
    sent_body = False
    send_chunk, chunks = trio.open_memory_channel[bytes](256)
    started: trio.MemorySendChannel[tuple[int, dict[str, str]]]
    started, got_start = trio.open_memory_channel[tuple[int, dict[str, str]]](1)
    done = trio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            hdrs = {bytes(k).decode().lower(): bytes(v).decode() for k, v in message["headers"]}
            await started.send((message["status"], hdrs))
        elif message["type"] == "http.response.body":
            if gone.is_set():
                raise trio.BrokenResourceError("client went away")
            if message.get("body"):
                await send_chunk.send(message["body"])
            if not message.get("more_body", False):
                send_chunk.close()

    async def run_app() -> None:
        try:
            await app(scope, receive, send)
        finally:
            send_chunk.close()
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_app)
        status, hdrs = await got_start.receive()
        live = LiveResponse(status, hdrs, chunks, gone, done)
        yield live
        gone.set()
        with trio.fail_after(5):
            await done.wait()


async def request(
    app: App,
    method: str,
    path: str = "/mcp",
    *,
    headers: dict[str, str] | None = None,
    body: bytes | dict[str, Any] | list[Any] = b"",
) -> tuple[int, dict[str, str], bytes]:
    async with open_request(app, method, path, headers=headers, body=body) as live:
        data = await live.read_all()
        return live.status, live.headers, data
