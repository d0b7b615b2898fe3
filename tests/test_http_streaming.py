"""``write_stream``: the writer that follows one SSE stream's replay log on one connection."""

from __future__ import annotations

from typing import Any

import trio
from _asgi_client import parse_sse
from mcpvisor.runtime.transports.http._events import ReplayStream
from mcpvisor.runtime.transports.http._exchange import Exchange
from mcpvisor.runtime.transports.http._streaming import write_stream


async def test_events_logged_before_close_sse_stream_go_out_before_the_connection_ends() -> None:
    """The handler reports progress 1, 2, 3, then asks to end the connection (``ctx.close_sse_stream``).
    Progress 3 and the poll request arrive while the writer is still sending 1 and 2 (a loaded
    machine): 3 must still go out on this connection, before the ``retry:`` hint that ends it (it used
    to stay in the log, seen only after a resume)."""
    stream = ReplayStream(key=5)
    sent: list[dict[str, Any]] = []
    handler_went_on = False

    async def send(message: dict[str, Any]) -> None:
        nonlocal handler_went_on
        sent.append(message)
        if message["type"] == "http.response.body" and b'"progress": 2' in message["body"]:
            # the handler runs on while this write is on the wire
            stream.append(b'{"progress": 3}', droppable=True)
            stream.request_poll()
            handler_went_on = True
        await trio.lowlevel.checkpoint()

    async def receive() -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    stream.append(b'{"progress": 1}', droppable=True)
    stream.append(b'{"progress": 2}', droppable=True)
    with trio.fail_after(5):
        delivered = await write_stream(
            Exchange(receive, send), stream, after=0, resumable=True, prime=True, retry_ms=10
        )
    assert handler_went_on and not delivered
    raw = b"".join(m["body"] for m in sent if m["type"] == "http.response.body")
    body = raw.decode()
    events = parse_sse(raw)
    data = [e["data"] for e in events if e.get("data")]
    assert data == ['{"progress": 1}', '{"progress": 2}', '{"progress": 3}'], body
    assert body.rstrip().endswith("retry: 10"), body  # the hint ends the connection, after 3
    assert sent[-1]["more_body"] is False
