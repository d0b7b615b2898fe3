"""An in-memory connection to a running server: for tests, embedding, and the official SDK client.

``open_memory_client(port)`` gives a small client that speaks both eras straight to a ``ServerPort``
(no bytes, no sockets); ``open_sdk_streams(port)`` gives the anyio streams of ``SessionMessage`` that the
official ``mcp`` SDK's ``ClientSession`` takes, so the SDK can drive a server in-process.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio
from mcpvisor.supervisors._lone_error import lone_error

from ..protocol import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LATEST_HANDSHAKE_VERSION,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    CloseSseStream,
    ErrorResponse,
    JsonRpcError,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    cancelled_notification,
    is_stateless,
)
from ..tree._port import ServerPort

#: Answers a server-to-client request (``elicitation/create``, ``sampling/createMessage``, ...):
#: return the result, or raise ``JsonRpcError``.
ClientRequestHandler = Callable[[str, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


class ClosedByServer(Exception):
    """The server closed the request's stream without a final reply."""


class MemoryClient:
    """A client of one ``ServerPort``; see ``open_memory_client``."""

    def __init__(
        self,
        port: ServerPort,
        *,
        protocol_version: str,
        capabilities: Mapping[str, Any],
        client_info: Mapping[str, Any],
        on_request: ClientRequestHandler | None,
        log_level: str | None,
    ) -> None:
        self.port = port
        self.protocol_version = protocol_version
        self.capabilities = dict(capabilities)
        self.client_info = dict(client_info)
        self.on_request = on_request
        self.log_level = log_level
        self.session_id: str | None = None
        #: Every notification received, related to a request or from the standalone stream, in order.
        self.notifications: list[Notification] = []
        self.initialize_result: Mapping[str, Any] | None = None
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    @property
    def stateless(self) -> bool:
        return is_stateless(self.protocol_version)

    def next_id(self) -> RequestId:
        return next(self._ids)

    async def initialize(self) -> Mapping[str, Any]:
        """The handshake (handshake-era versions): create the session, initialize, send initialized."""
        if self.stateless:
            raise RuntimeError(f"{self.protocol_version} has no initialize handshake")
        self.session_id = await self.port.create_session()
        params = {
            "protocolVersion": self.protocol_version,
            "capabilities": self.capabilities,
            "clientInfo": self.client_info,
        }
        result = await self.request("initialize", params)
        await self.notify("notifications/initialized")
        self.initialize_result = result
        return result

    def _envelope(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        out = dict(params or {})
        meta = dict(out.get("_meta") or {})
        meta.setdefault(PROTOCOL_VERSION_META_KEY, self.protocol_version)
        meta.setdefault(CLIENT_CAPABILITIES_META_KEY, self.capabilities)
        meta.setdefault(CLIENT_INFO_META_KEY, self.client_info)
        if self.log_level is not None:
            meta.setdefault(LOG_LEVEL_META_KEY, self.log_level)
        out["_meta"] = meta
        return out

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        request_id: RequestId | None = None,
        progress_token: str | int | None = None,
        on_notification: Callable[[Notification], None] | None = None,
    ) -> Mapping[str, Any]:
        """Send a request and return its result; raises ``JsonRpcError`` for an error reply."""
        if request_id is None:
            request_id = self.next_id()
        out: dict[str, Any] | None = dict(params) if params is not None else None
        if progress_token is not None:
            out = dict(out or {})
            out["_meta"] = {**(out.get("_meta") or {}), "progressToken": progress_token}
        if self.stateless and method != "initialize":
            out = self._envelope(out)
        send, receive = trio.open_memory_channel[Message](math.inf)
        await self.port.submit(self.session_id, Request(request_id, method, out), send)
        async with receive:
            async for message in receive:
                if isinstance(message, CloseSseStream):
                    continue  # an HTTP-only control item: no SSE connection in memory
                if isinstance(message, Notification):
                    self.notifications.append(message)
                    if on_notification is not None:
                        on_notification(message)
                elif isinstance(message, Request):
                    await self._answer(message)
                elif isinstance(message, Response):
                    return message.result
                elif isinstance(message, ErrorResponse):
                    raise JsonRpcError(message.error.code, message.error.message, message.error.data)
        raise ClosedByServer(f"{method} (id {request_id!r}): the server closed the stream without a reply")

    async def _answer(self, request: Request) -> None:
        reply: Message
        if self.on_request is None:
            reply = ErrorResponse(
                request.id, JsonRpcError(-32601, f"client does not handle {request.method}").to_error()
            )
        else:
            try:
                result = await self.on_request(request.method, request.params or {})
                reply = Response(request.id, dict(result))
            except JsonRpcError as exc:
                reply = ErrorResponse(request.id, exc.to_error())
        await self.port.submit(self.session_id, reply)

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        await self.port.submit(self.session_id, Notification(method, params))

    async def cancel(self, request_id: RequestId, reason: str | None = None) -> None:
        """``notifications/cancelled`` for one of our requests."""
        await self.port.submit(self.session_id, cancelled_notification(request_id, reason))

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Mapping[str, Any]:
        return await self.request("tools/call", {"name": name, "arguments": dict(arguments or {})}, **kwargs)

    def listen(self) -> None:
        """Collect the standalone stream (list_changed, resources/updated) into ``notifications``."""
        assert self._nursery is not None and self.session_id is not None
        stream = self.port.standalone_stream(self.session_id)

        async def pump() -> None:
            async with stream:
                async for message in stream:
                    if isinstance(message, Notification):
                        self.notifications.append(message)

        self._nursery.start_soon(pump)

    async def close(self) -> None:
        if self.session_id is not None:
            await self.port.close_session(self.session_id)


@asynccontextmanager
async def open_memory_client(
    port: ServerPort,
    *,
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    capabilities: Mapping[str, Any] | None = None,
    client_info: Mapping[str, Any] | None = None,
    on_request: ClientRequestHandler | None = None,
    log_level: str | None = None,
    initialize: bool = True,
    close: bool = True,
) -> AsyncIterator[MemoryClient]:
    """A connected client: handshake-era versions are initialized on entry (``initialize=False`` to
    do it yourself); 2026-07-28 sends the ``_meta`` envelope on every request. The session is closed on
    exit unless ``close=False``."""
    client = MemoryClient(
        port,
        protocol_version=protocol_version,
        capabilities=capabilities if capabilities is not None else {},
        client_info=client_info if client_info is not None else {"name": "mcpvisor-memory", "version": "0"},
        on_request=on_request,
        log_level=log_level,
    )
    lone: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            client._nursery = nursery
            if initialize and not client.stateless:
                await client.initialize()
            try:
                yield client
            finally:
                if close:
                    with trio.CancelScope(shield=True):
                        await client.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery only runs listeners: a lone error is the body's own, raise it bare.
        lone = lone_error(group)
        if lone is None:
            raise
    if lone is not None:
        raise lone


@asynccontextmanager
async def open_sdk_streams(port: ServerPort) -> AsyncIterator[tuple[Any, Any]]:
    """``(read_stream, write_stream)`` for the official SDK's ``ClientSession``, served in-process.

    Needs the ``mcp`` package (the ``dev`` extra). One session, as over stdio; leaving the block ends
    it::

        async with open_sdk_streams(running) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
    """
    import anyio
    from mcp import types
    from mcp.shared.message import SessionMessage

    from ..protocol import Malformed, encode, parse_message
    from ._connection import Outgoing
    from ._direct_connection import DirectClientConnection

    out_send, out_receive = trio.open_memory_channel[Outgoing](math.inf)

    class ServerInbox:
        """The client's write stream: each message goes to the connection in the sending task itself
        (a reader task in between costs two trips through the scheduler per message). Closing it (or
        leaving the block) is the end of input: it starts the task that closes the session (``finish``),
        so no task waits for that from the start."""

        def __init__(self, conn: DirectClientConnection, nursery: trio.Nursery) -> None:
            self.conn = conn
            self.nursery = nursery
            self.closed = False
            self.reader: ClientOutbox | None = None

        async def send(self, item: SessionMessage) -> None:
            if self.closed:
                raise anyio.ClosedResourceError
            parsed = parse_message(item.message.model_dump_json(by_alias=True, exclude_unset=True))
            # Shielded: a client's timeout must not cut a request in half (its pump started, its
            # submission not made), which would leave the connection waiting for an answer at the end.
            with trio.CancelScope(shield=True):
                if isinstance(parsed, Malformed):
                    await self.conn.out.send(parsed.reply)
                else:
                    await self.conn.handle(parsed)
            reader = self.reader
            if reader is not None and reader.stopped:
                # Nobody reads: what this message put straight into ``out`` (the answer to a
                # malformed one, to a session that could not start) is taken out now, not left there.
                self.conn.take_out(out_receive)

        async def aclose(self) -> None:
            if self.closed:
                return
            self.closed = True
            assert self.reader is not None
            self.nursery.start_soon(finish, self.conn, self.reader)

        async def __aenter__(self) -> ServerInbox:
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self.aclose()

    class ClientOutbox:
        """The client's read stream: the SDK's own reader task takes each answer straight from ``out``
        (every request's replies channel is a clone of it, ``DirectClientConnection``), converting it
        as it goes. No writer task of ours in between: one task wake less per message.

        Since the reader is what settles a request (``DirectClientConnection.settle``), a reader that
        stops must be replaced: once the client closes this stream (``aclose``, what ``ClientSession``
        does on exit) or leaves the ``open_sdk_streams`` block, what is in ``out`` is taken out and
        settled at once, the session's messages not tied to a request stop coming, and a drain task
        takes what still comes out of ``out``, drops it and settles the answers, so the end of input
        waits for requests still running (up to the connection's grace) and never for a reader that is
        gone, and nothing piles up in ``out`` meanwhile. The task is started only when something can
        still come (a request in flight, or the client sending one more): a session closed with nothing
        in flight, the usual end, needs none (``DirectClientConnection.stop_reading``). Reading after
        ``aclose`` raises ``anyio.ClosedResourceError``; after the block ended, ``anyio.EndOfStream``.
        """

        def __init__(self, conn: DirectClientConnection, nursery: trio.Nursery) -> None:
            self.conn = conn
            self.nursery = nursery
            self.pending: list[Message] = []  # the rest of a batch's answers
            self.abandoned = False  # the client closed this stream
            self.ended = False  # the block ended: nobody reads any more
            self.stopped = False  # nobody reads any more (``stop_reading`` ran)
            self.drained = trio.CancelScope()  # the drain task's, cancelled once the session is closed

        async def receive(self) -> SessionMessage:
            while True:
                if self.abandoned:
                    raise anyio.ClosedResourceError
                if self.ended:
                    raise anyio.EndOfStream
                if self.pending:
                    message = self.pending.pop(0)
                else:
                    try:
                        outgoing = await out_receive.receive()
                    except trio.EndOfChannel:
                        raise anyio.EndOfStream from None
                    if isinstance(outgoing, tuple):
                        self.pending.extend(outgoing)
                        continue
                    message = outgoing
                if isinstance(message, CloseSseStream):
                    continue  # an HTTP-only control item: there is no SSE connection here
                self.conn.settle(message)
                wire = types.jsonrpc_message_adapter.validate_json(encode(message), by_name=False)
                return SessionMessage(wire)

        def __aiter__(self) -> ClientOutbox:
            return self

        async def __anext__(self) -> SessionMessage:
            try:
                return await self.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None

        async def aclose(self) -> None:
            # The client stopped reading: nothing it sent will be read, so the end of input need not
            # wait for the answers in flight (a request sent after this is still settled, by the drain).
            self.abandoned = True
            self.conn.abandon()
            self.stop_reading()

        def stop_reading(self) -> None:
            """Nobody reads from now on (once; see the class docstring)."""
            if self.stopped:
                return
            self.stopped = True
            for message in self.pending:
                self.conn.settle(message)
            self.pending.clear()
            self.conn.stop_reading(out_receive, self._start_drain)

        def _start_drain(self) -> None:
            self.nursery.start_soon(self._drain)

        async def _drain(self) -> None:
            with self.drained:
                async for outgoing in out_receive:
                    for message in outgoing if isinstance(outgoing, tuple) else (outgoing,):
                        self.conn.settle(message)

        async def __aenter__(self) -> ClientOutbox:
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self.aclose()

    async def finish(conn: DirectClientConnection, outbox: ClientOutbox) -> None:
        await conn.finish()
        outbox.drained.cancel()  # the session is closed: what is left in ``out`` is nobody's

    async with trio.open_nursery() as nursery:
        async with out_send:
            conn = DirectClientConnection(port, out_send.clone(), nursery)
        inbox = ServerInbox(conn, nursery)
        outbox = inbox.reader = ClientOutbox(conn, nursery)
        try:
            yield outbox, inbox
        finally:
            outbox.ended = True
            outbox.stop_reading()
            await inbox.aclose()
