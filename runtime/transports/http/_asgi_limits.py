"""Our HTTP server's request limits as ASGI middleware, for a server that does not enforce them itself
(``serve_http(server="hypercorn")``).

Our own server (``_asgi_h11``) enforces these in the connection, where it is cheaper and exact. On
hypercorn, measured: a request carrying both Content-Length and Transfer-Encoding kept its connection
open, so a second request smuggled behind it was served; a request body that never came held its
connection forever (hypercorn's ``read_timeout`` would also cut a quiet SSE stream, so it stays off);
and a request head up to about twice ``h11_max_incomplete_size`` was served when it arrived in one
read. This wraps the app so that:

- the answer to a Content-Length + Transfer-Encoding request says ``Connection: close`` (hypercorn then
  closes the connection after it, RFC 9112 section 6.3);
- a request head longer than ``max_header_bytes`` (counted from the request line and headers hypercorn
  parsed, so a few bytes of whitespace may go uncounted) is answered 431 without reaching the app;
- a request body not received within ``body_timeout`` seconds is answered 408 with ``Connection:
  close`` (the app sees ``http.disconnect``).

What it cannot do from inside the app: cap connections (a connection that sends nothing never reaches
the app), or bound how long a head takes to come (hypercorn's ``keep_alive_timeout`` does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

import trio

ASGIMessage: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[ASGIMessage]]
Send: TypeAlias = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def _head_size(scope: MutableMapping[str, Any]) -> int:
    """The request head's length as sent, but for optional whitespace hypercorn stripped."""
    target = len(scope.get("raw_path", b"")) + (
        len(scope["query_string"]) + 1 if scope.get("query_string") else 0
    )
    line = len(scope.get("method", "")) + 1 + target + len(" HTTP/1.1\r\n")
    return line + sum(len(name) + 2 + len(value) + 2 for name, value in scope.get("headers", ())) + 2


def _ambiguous_length(scope: MutableMapping[str, Any]) -> bool:
    names = {bytes(name).lower() for name, _ in scope.get("headers", ())}
    return b"content-length" in names and b"transfer-encoding" in names


async def _answer(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(text)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


def with_request_limits(app: ASGIApp, *, max_header_bytes: int, body_timeout: float) -> ASGIApp:
    """``app`` behind the limits above (HTTP scopes only; lifespan and others pass through)."""

    async def limited(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        if _head_size(scope) > max_header_bytes:
            await _answer(send, 431, b"Request Header Fields Too Large\n")
            return
        close = _ambiguous_length(scope)
        deadline = trio.current_time() + body_timeout
        body_done = False
        timed_out = False
        started = False

        async def receive_in_time() -> ASGIMessage:
            nonlocal body_done, timed_out
            if body_done or timed_out:
                return await receive()
            with trio.move_on_at(deadline):
                message = await receive()
                if message.get("type") != "http.request" or not message.get("more_body", False):
                    body_done = True
                return message
            timed_out = True
            return {"type": "http.disconnect"}

        async def send_closing(message: ASGIMessage) -> None:
            nonlocal started
            if timed_out:
                raise trio.BrokenResourceError("the request body did not come in time")
            if message.get("type") == "http.response.start":
                started = True
                if close:
                    headers = [
                        (k, v) for k, v in message.get("headers", ()) if bytes(k).lower() != b"connection"
                    ]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await app(scope, receive_in_time, send_closing)
        except trio.BrokenResourceError:
            if not timed_out:
                raise
        if timed_out and not started:
            await _answer(send, 408, b"Request Timeout\n")

    return limited
