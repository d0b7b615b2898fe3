"""One client over one ordered message stream (stdio, or the SDK's in-memory streams) to a ``ServerPort``.

One session per connection: a handshake-era request opens it, ``initialize`` reopens an ended one, and
2026-07-28 envelope requests run stateless. Each request gets its own replies channel and a pump task,
so a slow request never holds up another's answer; a busy session is waited for (one client, no one
else to serve meanwhile).
"""

from __future__ import annotations

import logging
import math

import trio

from ..protocol import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    SERVER_BUSY,
    CloseSseStream,
    ErrorResponse,
    Malformed,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    error_response,
    is_stateless_request,
    negotiate_version,
    parse_cancelled,
)
from ..tree._port import (
    RequestLimitReached,
    ServerPort,
    SessionBusy,
    SessionLimitReached,
    TransportError,
    UnknownSession,
)

logger = logging.getLogger("mcpvisor.runtime.transports")

#: What goes to the client: one message, or the answers to a batch (2025-03-26), sent as one array.
Outgoing = Message | tuple[Message, ...]


def _no_session(request_id: RequestId, exc: TransportError) -> ErrorResponse:
    """The answer when no session can be started for this client now."""
    retry = f"retry after {math.ceil(exc.retry_after)} s" if isinstance(exc, SessionBusy) else "retry later"
    return error_response(
        request_id,
        INTERNAL_ERROR,
        f"Server busy: it cannot start a session now (it is stopping, or restarting its sessions); {retry}",
    )


class _Batch:
    """Collects the final answers of one batch's requests; the last one sends them as one array."""

    def __init__(self, out: trio.MemorySendChannel[Outgoing], expected: int) -> None:
        self.out = out
        self.expected = expected
        self.answers: list[Message] = []

    async def done_one(self, answer: Message | None) -> None:
        if answer is not None:
            self.answers.append(answer)
        self.expected -= 1
        if self.expected == 0:
            async with self.out:
                if self.answers:  # a batch of only cancelled requests answers nothing
                    await self.out.send(tuple(self.answers))


def _busy(request_id: RequestId, exc: SessionBusy) -> ErrorResponse:
    """A request refused by a limit: ``SERVER_BUSY`` (-32050), saying which limit and when to retry."""
    data = {"retryAfter": exc.retry_after, "limit": getattr(exc, "limit", None)}
    return error_response(request_id, SERVER_BUSY, str(exc), data)


class SingleClientConnection:
    """Routes one client's messages to a ``ServerPort`` and its answers to one ``out`` channel.

    ``out`` is this connection's own clone; every pump works on a clone of it, so ``out``'s receiver
    sees the end once ``finish`` ran and every request and the standalone stream are done.
    """

    def __init__(
        self, port: ServerPort, out: trio.MemorySendChannel[Outgoing], nursery: trio.Nursery
    ) -> None:
        self.port = port
        self.out = out
        self.nursery = nursery
        self.session_id: str | None = None
        self.version: str | None = None
        self._running = 0  # requests whose final answer is not out yet
        self._drained = trio.Event()
        #: stateless requests in flight, by id: what ``notifications/cancelled`` names (2026-07-28)
        self._stateless: dict[RequestId, trio.MemorySendChannel[Message]] = {}

    async def _pump(
        self,
        replies: trio.MemoryReceiveChannel[Message],
        out: trio.MemorySendChannel[Outgoing],
        batch: _Batch | None,
        stateless_id: RequestId | None = None,
    ) -> None:
        try:
            await self._forward(replies, out, batch)
        finally:
            if stateless_id is not None:
                self._stateless.pop(stateless_id, None)
            self._running -= 1
            if self._running == 0:
                self._drained.set()

    async def _forward(
        self,
        replies: trio.MemoryReceiveChannel[Message],
        out: trio.MemorySendChannel[Outgoing],
        batch: _Batch | None,
    ) -> None:
        final: Message | None = None
        with replies, out:  # (closing needs no checkpoint: each one is a trip through the scheduler)
            async for message in replies:
                if isinstance(message, CloseSseStream):
                    continue  # an HTTP-only control item: there is no SSE connection here
                if batch is not None and isinstance(message, Response | ErrorResponse):
                    final = message
                else:
                    try:
                        out.send_nowait(message)
                    except trio.WouldBlock:
                        await out.send(message)
        if batch is not None:
            await batch.done_one(final)

    async def _answer(self, message: Message, batch: _Batch | None) -> None:
        if batch is None:
            await self.out.send(message)
        else:
            await batch.done_one(message)

    async def handle_batch(self, items: tuple[Message | Malformed, ...]) -> None:
        """A 2025-03-26 JSON-RPC batch: each item handled as if alone, the answers sent as one array."""
        answers = [item.reply for item in items if isinstance(item, Malformed)]
        requests = [item for item in items if isinstance(item, Request)]
        batch = _Batch(self._out_clone(), len(answers) + len(requests)) if answers or requests else None
        for answer in answers:
            assert batch is not None
            await batch.done_one(answer)
        for item in items:
            if isinstance(item, Request):
                await self.handle(item, batch)
            elif not isinstance(item, Malformed):
                await self.handle(item)  # notifications and responses get no answer

    def _standalone(self, session_id: str) -> None:
        """Route the session's messages not tied to a request to ``out``: a pump task from its stream."""
        stream = self.port.standalone_stream(session_id)
        self.nursery.start_soon(self._pump_standalone, stream, self._out_clone())

    def _out_clone(self) -> trio.MemorySendChannel[Outgoing]:
        """A clone of ``out`` for one more writer (a request's pump, a batch, the standalone stream)."""
        return self.out.clone()

    async def _pump_standalone(
        self, stream: trio.MemoryReceiveChannel[Message], out: trio.MemorySendChannel[Outgoing]
    ) -> None:
        async with stream, out:
            async for message in stream:
                await out.send(message)

    async def _submit(
        self, target: str | None, message: Message, replies: trio.MemorySendChannel[Message] | None
    ) -> None:
        while True:
            try:
                await self.port.submit(target, message, replies)
            except RequestLimitReached:
                raise  # waiting would stall reading the pipe (and its cancellations): refuse
            except SessionBusy as busy:
                await trio.sleep(min(busy.retry_after, 0.05))  # a pipe has one client: just wait
            else:
                return

    async def handle(self, message: Message, batch: _Batch | None = None) -> None:
        port = self.port
        if isinstance(message, Request):
            initialize = message.method == "initialize"
            stateless = is_stateless_request(message)
            # One session per process: a handshake-era request opens it (its lifecycle then serves
            # ping before initialize and refuses the rest), and initialize reopens an ended one.
            if (initialize or (not stateless and self.session_id is None)) and (
                self.session_id is None or not port.has_session(self.session_id)
            ):
                try:
                    session_id = await port.create_session()
                    self._standalone(session_id)
                except SessionLimitReached as exc:  # a port shared with other transports is full
                    await self._answer(_busy(message.id, exc), batch)
                    return
                except TransportError as exc:  # stopping: answer, keep serving
                    await self._answer(_no_session(message.id, exc), batch)
                    return
                except Exception:
                    logger.exception("starting a session for %s (id %r) failed", message.method, message.id)
                    await self._answer(error_response(message.id, INTERNAL_ERROR, "Internal error"), batch)
                    return
                self.session_id = session_id
                self.version = None
                if initialize:
                    # The version this initialize settles on, known now, so a batch pipelined right
                    # behind it is parsed by the negotiated revision's rules.
                    params = message.params if message.params is not None else {}
                    self.version = negotiate_version(params.get("protocolVersion"))
            target = self.session_id
            if target is not None and not port.has_session(target):
                self.session_id = target = None
                if not stateless:
                    await self._answer(
                        error_response(
                            message.id,
                            INVALID_REQUEST,
                            "The session has ended (closed, idle or crashed too often): "
                            "send initialize to start a new one",
                        ),
                        batch,
                    )
                    return
            send = self._replies_for(message.id, batch, stateless=target is None)
            try:
                await self._submit(target, message, send)
            except UnknownSession:
                self.session_id = None
                await send.send(error_response(message.id, INVALID_REQUEST, "The session has ended"))
                send.close()
            except RequestLimitReached as exc:
                await send.send(_busy(message.id, exc))
                send.close()  # refused: the runtime never took ``send``, so nothing else closes it
            except Exception:
                # A bug behind the port costs this request, never the connection (and never a pump
                # left waiting for an answer that cannot come).
                logger.exception("submitting %s (id %r) failed", message.method, message.id)
                await send.send(error_response(message.id, INTERNAL_ERROR, "Internal error"))
                send.close()
            return
        if isinstance(message, Notification) and message.method == "notifications/cancelled":
            cancelled = parse_cancelled(message.params)
            named = None if cancelled is None else cancelled.request_id
            handle = None if named is None else self._stateless.get(named)
            if named is not None:
                self._cancelled(named)
            if handle is not None:  # a stateless request of ours (ids of a session's go to it)
                port.cancel_stateless(handle)
                return
        if self.session_id is not None:
            try:
                await self._submit(self.session_id, message, None)
            except UnknownSession:
                self.session_id = None
            except Exception:  # nothing to answer a notification or response with: log it
                logger.exception("submitting a %s failed", type(message).__name__.lower())

    def _replies_for(
        self, request_id: RequestId, batch: _Batch | None, *, stateless: bool
    ) -> trio.MemorySendChannel[Message]:
        """The channel one request's replies go to: its own, forwarded to ``out`` by a pump task."""
        send, receive = trio.open_memory_channel[Message](math.inf)
        self._running += 1
        self._drained = trio.Event() if self._running == 1 else self._drained
        stateless_id = request_id if stateless else None
        if stateless_id is not None:
            self._stateless[stateless_id] = send
        self.nursery.start_soon(self._pump, receive, self._out_clone(), batch, stateless_id)
        return send

    def _cancelled(self, request_id: RequestId) -> None:
        """The client cancelled one of its requests (no answer will come): nothing to do here, the
        request's pump ends when the runtime closes its replies channel."""

    async def finish(self, grace: float = 5.0) -> None:
        """End of input: give the requests already sent up to ``grace`` seconds to be answered, then
        close the session (what is still running is answered -32603) and let the pumps drain."""
        if self._running:
            with trio.move_on_after(grace):
                await self._drained.wait()
        if self.session_id is not None:
            await self.port.close_session(self.session_id)
            self.out.close()  # close_session was this call's checkpoint: closing needs none
        else:
            await self.out.aclose()
