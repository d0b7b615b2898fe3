"""A ``SingleClientConnection`` whose requests answer straight into its ``out`` channel.

The base connection gives each request its own replies channel and a pump task that forwards them to
``out``: what stdio needs to answer -32603 for a replies channel closed without a final answer, and what
a batch needs to collect its answers. A client that sends no batches and whose reader sees every message
anyway (the official SDK's ``ClientSession`` in memory, ``open_sdk_streams``) does not need the hop: each
request's replies channel is a clone of ``out`` itself, so an answer wakes the one writer task directly.
Per request that saves a memory channel, a spawned task and one trip through the scheduler.

What the pumps did is kept: ``finish`` still waits for the requests in flight, which ``settle`` (called
by the reader of ``out`` for every final answer it takes out) and a client's ``notifications/cancelled``
count down (so a reader that stops must be replaced: ``ClientOutbox``'s drain); a stateless request's
cancel handle is dropped when it is answered. Batches keep the pumped path.
"""

from __future__ import annotations

import trio

from ..protocol import ErrorResponse, Message, RequestId, Response
from ..tree._port import ServerPort
from ._connection import Outgoing, SingleClientConnection, _Batch


class DirectClientConnection(SingleClientConnection):
    """See the module docstring. Whatever reads ``out`` must call ``settle`` for each final answer it
    takes out, and keep doing so (or call ``abandon``) once the client stops reading: an answer left in
    ``out`` keeps ``finish`` waiting out its grace (``open_sdk_streams`` drains ``out`` then)."""

    def __init__(
        self, port: ServerPort, out: trio.MemorySendChannel[Outgoing], nursery: trio.Nursery
    ) -> None:
        super().__init__(port, out, nursery)
        self._open: set[RequestId] = set()  # requests answered directly whose final answer is not out yet

    def _replies_for(
        self, request_id: RequestId, batch: _Batch | None, *, stateless: bool
    ) -> trio.MemorySendChannel[Message]:
        if batch is not None or request_id in self._open:
            # A batch collects its answers in a pump; a reused id in flight could not be told apart.
            return super()._replies_for(request_id, batch, stateless=stateless)
        send: trio.MemorySendChannel[Message] = self.out.clone()
        self._open.add(request_id)
        self._running += 1
        self._drained = trio.Event() if self._running == 1 else self._drained
        if stateless:
            self._stateless[request_id] = send
        return send

    def settle(self, message: Message) -> None:
        """The writer took ``message`` out of ``out``: a final answer ends its request's bookkeeping."""
        if isinstance(message, Response | ErrorResponse) and message.id is not None:
            self._settle(message.id)

    def abandon(self) -> None:
        """The client stopped reading: no answer in flight will be taken out, so none is waited for."""
        for request_id in list(self._open):
            self._settle(request_id)

    def _cancelled(self, request_id: RequestId) -> None:
        self._settle(request_id)  # no answer will come (a late one still goes out, unaccounted)

    def _settle(self, request_id: RequestId) -> None:
        if request_id not in self._open:
            return
        self._open.discard(request_id)
        self._stateless.pop(request_id, None)
        self._running -= 1
        if self._running == 0:
            self._drained.set()
