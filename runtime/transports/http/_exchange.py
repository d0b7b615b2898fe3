"""One HTTP exchange over ASGI: the request's headers in, a status, headers and body out.

The transport's routing code speaks in these terms (`respond`, `error`, `body`) so it never builds raw
ASGI messages, and a client that went away surfaces as one exception, `Disconnected`, wherever the
write happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, TypeAlias

import trio

from ...protocol import RequestId, encode, error_response
from ...server._caller import Requester
from ._guard import JSON

Scope: TypeAlias = MutableMapping[str, Any]
ASGIMessage: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[ASGIMessage]]
Send: TypeAlias = Callable[[ASGIMessage], Awaitable[None]]


class Disconnected(Exception):
    """The client went away while we were writing; the request itself carries on."""


def headers_of(scope: Scope) -> dict[str, str]:
    # HTTP field values are compared after trimming optional whitespace (RFC 9110 section 5.5).
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1").strip()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def error_body(code: int, message: str, request_id: RequestId | None = None) -> bytes:
    return encode(error_response(request_id, code, message))


class Exchange:
    """One HTTP request/response: the ASGI callables plus whether the response has started."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self._send = send
        self.started = False
        self.json_ok = True  # the client accepts application/json (POST)
        self.cors: list[tuple[str, str]] = []  # added to every response for an allowed browser origin
        #: Who sent the request (headers, and the principal once authenticated): goes with every
        #: message this exchange submits.
        self.caller: Requester = Requester()

    async def start(self, status: int, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in [*headers, *self.cors]],
            }
        )

    async def body(self, data: bytes, *, more: bool = False) -> None:
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": more})
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise Disconnected from exc

    async def respond(self, status: int, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()) -> None:
        all_headers = list(headers)
        if body:
            all_headers.append(("content-type", JSON))
        all_headers.append(("content-length", str(len(body))))
        await self.start(status, all_headers)
        await self.body(body)

    async def error(
        self,
        status: int,
        code: int,
        message: str,
        headers: Sequence[tuple[str, str]] = (),
        request_id: RequestId | None = None,
    ) -> None:
        await self.respond(status, error_body(code, message, request_id), headers)

    async def wait_disconnect(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return
