"""One client over one ordered message stream (stdio, or the SDK's in-memory streams) to a ``ServerPort``.

One session per connection: a handshake-era request opens it, ``initialize`` reopens an ended one, and
2026-07-28 envelope requests run stateless. Each request gets its own replies channel and a pump task,
so a slow request never holds up another's answer; a busy session is waited for (one client, no one
else to serve meanwhile).
"""

from __future__ import annotations

import math

import trio

from ..protocol import INVALID_REQUEST, Message, Request, Response, error_response, has_stateless_envelope
from ..server._port import ServerPort, SessionBusy, UnknownSession


class SingleClientConnection:
    """Routes one client's messages to a ``ServerPort`` and its answers to one ``out`` channel.

    ``out`` is this connection's own clone; every pump works on a clone of it, so ``out``'s receiver
    sees the end once ``finish`` ran and every request and the standalone stream are done.
    """

    def __init__(self, port: ServerPort, out: trio.MemorySendChannel[Message], nursery: trio.Nursery) -> None:
        self.port = port
        self.out = out
        self.nursery = nursery
        self.session_id: str | None = None
        self.version: str | None = None

    async def _pump(
        self,
        replies: trio.MemoryReceiveChannel[Message],
        out: trio.MemorySendChannel[Message],
        initialize: bool,
    ) -> None:
        async with replies, out:
            async for message in replies:
                if initialize and isinstance(message, Response):
                    version = message.result.get("protocolVersion")
                    self.version = version if isinstance(version, str) else None
                await out.send(message)

    async def _pump_standalone(
        self, stream: trio.MemoryReceiveChannel[Message], out: trio.MemorySendChannel[Message]
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
            except SessionBusy as busy:
                await trio.sleep(min(busy.retry_after, 0.05))  # a pipe has one client: just wait
            else:
                return

    async def handle(self, message: Message) -> None:
        port = self.port
        if isinstance(message, Request):
            initialize = message.method == "initialize"
            stateless = has_stateless_envelope(message.params)
            # One session per process: a handshake-era request opens it (its lifecycle then serves
            # ping before initialize and refuses the rest), and initialize reopens an ended one.
            if (initialize or (not stateless and self.session_id is None)) and (
                self.session_id is None or not port.has_session(self.session_id)
            ):
                self.session_id = await port.create_session()
                self.nursery.start_soon(
                    self._pump_standalone, port.standalone_stream(self.session_id), self.out.clone()
                )
            target = self.session_id
            if target is not None and not port.has_session(target):
                self.session_id = target = None
                if not stateless:
                    await self.out.send(
                        error_response(
                            message.id,
                            INVALID_REQUEST,
                            "The session has ended (closed, idle or crashed too often): "
                            "send initialize to start a new one",
                        )
                    )
                    return
            send, receive = trio.open_memory_channel[Message](math.inf)
            self.nursery.start_soon(self._pump, receive, self.out.clone(), initialize)
            try:
                await self._submit(target, message, send)
            except UnknownSession:
                send.close()
                self.session_id = None
                await self.out.send(error_response(message.id, INVALID_REQUEST, "The session has ended"))
            return
        if self.session_id is not None:
            try:
                await self._submit(self.session_id, message, None)
            except UnknownSession:
                self.session_id = None

    async def finish(self) -> None:
        """End of input: close the session (its requests are answered), then let the pumps drain."""
        if self.session_id is not None:
            await self.port.close_session(self.session_id)
        await self.out.aclose()
