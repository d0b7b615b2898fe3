"""A ``SingleClientConnection`` whose requests answer straight into its ``out`` channel.

The base connection gives each request its own replies channel and a pump task that forwards them to
``out``: what stdio needs to answer -32603 for a replies channel closed without a final answer, and what
a batch needs to collect its answers. A client that sends no batches and whose reader sees every message
anyway (the official SDK's ``ClientSession`` in memory, ``open_sdk_streams``) does not need the hop: each
request's replies channel is a clone of ``out`` itself, so an answer wakes the one writer task directly.
Per request that saves a memory channel, a spawned task and one trip through the scheduler.

What the pumps did is kept: ``finish`` still waits for the requests in flight, which ``settle`` (called
by the reader of ``out`` for every final answer it takes out) and a client's ``notifications/cancelled``
count down (so a reader that stops must be replaced while something can still come: ``ClientOutbox``'s
drain, and ``stop_reading``); a stateless request's cancel handle is dropped when it is answered.
Batches keep the pumped path.

The session's messages not tied to a request (list_changed, resources/updated, a task's requests) go
into ``out`` too, put there by the task that sends them (``ServerPort.standalone_into`` with an
``OutSink``): no stream and no pump task of their own, and they keep their order with the answers.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..protocol import ErrorResponse, Message, RequestId, Response
from ..tree._port import ServerPort
from ._connection import Outgoing, SingleClientConnection, _Batch

#: How many messages may wait in ``out`` unread before the session's messages not tied to a request are
#: dropped (counted in the server's stats): what a Streamable HTTP GET stream holds.
STANDALONE_BACKLOG = 256


class OutSink:
    """A session's messages not tied to a request, straight into ``out`` (``StandaloneSink``).

    Answers are never dropped; these are, once ``limit`` messages of any kind wait unread in ``out`` (a
    reader that far behind loses them as a GET stream's reader does), and once the reader stopped
    (``close``: the runtime lets the sink go at the next message).
    """

    def __init__(self, out: trio.MemorySendChannel[Outgoing], limit: int = STANDALONE_BACKLOG) -> None:
        self.out = out
        self.limit = limit

    def send_nowait(self, message: Message) -> None:
        out = self.out
        if out.statistics().current_buffer_used >= self.limit:
            raise trio.WouldBlock
        out.send_nowait(message)

    def close(self) -> None:
        self.out.close()


class DirectClientConnection(SingleClientConnection):
    """See the module docstring. Whatever reads ``out`` must call ``settle`` for each final answer it
    takes out, and keep doing so (or call ``abandon``) once the client stops reading: an answer left in
    ``out`` keeps ``finish`` waiting out its grace (``open_sdk_streams`` drains ``out`` then)."""

    def __init__(
        self, port: ServerPort, out: trio.MemorySendChannel[Outgoing], nursery: trio.Nursery
    ) -> None:
        super().__init__(port, out, nursery)
        self._open: set[RequestId] = set()  # requests answered directly whose final answer is not out yet
        self._sink: OutSink | None = None  # the current session's, while someone reads ``out``
        self._reading = True
        #: Set while nobody reads ``out`` and nothing is owed: called (once) before anything more can
        #: come into it, to start whatever takes it out (``stop_reading``).
        self._unread: Callable[[], None] | None = None

    def _standalone(self, session_id: str) -> None:
        if not self._reading:
            return  # nobody would read them: the runtime drops them, as for a session with no stream
        sink = OutSink(self._out_clone())
        if not self.port.standalone_into(session_id, sink):
            sink.close()
            super()._standalone(session_id)  # another node's session: its stream and a pump
            return
        if self._sink is not None:
            self._sink.close()  # a previous session's (it ended; the runtime closed it already)
        self._sink = sink

    def _out_clone(self) -> trio.MemorySendChannel[Outgoing]:
        unread = self._unread
        if unread is not None:
            self._unread = None
            unread()  # something will come into ``out`` again: it must be taken out
        return self.out.clone()

    def _replies_for(
        self, request_id: RequestId, batch: _Batch | None, *, stateless: bool
    ) -> trio.MemorySendChannel[Message]:
        if batch is not None or request_id in self._open:
            # A batch collects its answers in a pump; a reused id in flight could not be told apart.
            return super()._replies_for(request_id, batch, stateless=stateless)
        send: trio.MemorySendChannel[Message] = self._out_clone()
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

    def take_out(self, receive: trio.MemoryReceiveChannel[Outgoing]) -> None:
        """Take out what is in ``out`` now and settle it (nobody reads it: it is dropped)."""
        while True:
            try:
                outgoing = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            for message in outgoing if isinstance(outgoing, tuple) else (outgoing,):
                self.settle(message)

    def stop_reading(self, receive: trio.MemoryReceiveChannel[Outgoing], drain: Callable[[], None]) -> None:
        """Nobody reads ``out`` (through ``receive``) from now on: settle what is in it, stop the
        session's messages not tied to a request from coming, and call ``drain`` (to start a task
        that takes out and settles what still comes) now if something can still come into ``out`` (a
        request in flight, a pump), else just before something can (``_out_clone``). Idempotent.

        Runs without a checkpoint, so nothing comes in between the look and the decision."""
        if not self._reading:
            return
        self._reading = False
        self.take_out(receive)
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        # Open writers besides ``self.out`` (a request's replies, a pump's or a batch's clone) can
        # still put something in ``out``; so can a request whose final answer is not settled. (Once
        # ``finish`` closed ``self.out`` nothing needs draining: the session is over.)
        if receive.statistics().open_send_channels > 1 or self._running:
            drain()
        else:
            self._unread = drain

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
