"""SSE streams over an `Exchange`: pumps that fill a replay log, and the writer that follows one.

Pumps and writers are separate on purpose: a pump belongs to the request (it runs until the runtime's
final answer, whatever happens to the connection), a writer to one connection (it stops when the
client leaves, or early when the server makes the client poll).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import trio

from ...protocol import (
    INTERNAL_ERROR,
    CloseSseStream,
    ErrorResponse,
    Message,
    Notification,
    RequestId,
    Response,
    encode,
    error_response,
)
from ._events import ReplayStream, format_event, format_retry
from ._exchange import Disconnected, Exchange
from ._guard import SSE

#: An SSE comment line: it keeps an idle connection alive and carries no event.
KEEPALIVE = b": keepalive\n\n"


async def pump_replies(
    replies: trio.MemoryReceiveChannel[Message],
    stream: ReplayStream,
    pending: list[RequestId],
    *,
    finish: bool = True,
    answered: set[RequestId] | None = None,
) -> None:
    """Move a request's replies into its replay log, whatever happens to the connection.

    ``answered`` collects the ids whose final answer is in (so an abandoned batch cancels only the rest).

    A ``CloseSseStream`` control item is not an event: it asks the connection following the log to end.
    Only notifications are droppable: the log keeps answers and server requests until they are written.
    """
    waiting = set(pending)
    async with replies:
        async for message in replies:
            if isinstance(message, CloseSseStream):
                stream.request_poll()
                continue
            stream.append(encode(message), droppable=isinstance(message, Notification))
            if isinstance(message, Response | ErrorResponse) and message.id in waiting:
                waiting.discard(message.id)
                if answered is not None:
                    answered.add(message.id)
                if not waiting:
                    break
    for request_id in pending:
        if request_id in waiting:  # the runtime closed replies without an answer
            stream.append(encode(error_response(request_id, INTERNAL_ERROR, "Internal error")))
    if finish:
        stream.finish()


async def write_stream(
    ex: Exchange,
    stream: ReplayStream,
    *,
    after: int,
    resumable: bool,
    prime: bool,
    retry_ms: int,
    poll_after: float | None = None,
    polls_seen: int = 0,
    extra_headers: Sequence[tuple[str, str]] = (),
    keepalive: float | None = None,
) -> bool:
    """Follow `stream` on this connection until it finishes, the client leaves, or we make it poll.

    Returns True when the end of the stream was written, so the caller can drop its log: a stream
    delivered in full is never resumed.

    The priming event (an id and empty data) lets a client that loses the connection before the
    first real event resume anyway. With `poll_after` (seconds), the connection is closed early (after a
    `retry:` hint) and the client comes back with GET + `Last-Event-ID`; the log keeps filling
    meanwhile. Callers pass it only for a POST's first connection: a resuming GET follows to the end.
    The handler may also end a resumable connection this way at any time (``ctx.close_sse_stream()``:
    the stream's ``polls`` counter passes `polls_seen`, the requests a resuming GET already honoured).
    After `keepalive` seconds with nothing to write, an SSE comment goes out (clients ignore it).
    """
    await ex.start(
        200,
        [
            ("content-type", SSE),
            ("cache-control", "no-cache"),
            ("x-accel-buffering", "no"),
            *extra_headers,
        ],
    )
    head = format_event(b"", stream.event_id(0), retry_ms) if prime and resumable else b""
    deadline = math.inf if poll_after is None else trio.current_time() + poll_after
    seq = after
    delivered = False
    started = False
    stream.attach()
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            await ex.wait_disconnect()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        try:
            while True:
                # Read before the events: whatever the handler logged before it asked to end the
                # connection (``ctx.close_sse_stream()``) goes out on it, ahead of the ``retry:``.
                polled = resumable and stream.polls > polls_seen
                # Everything already logged goes out as one chunk (the priming event included), and
                # the last chunk carries the end of the body: fewer writes per request.
                parts = [head]
                head = b""
                for s, data in stream.since(seq):
                    parts.append(format_event(data, stream.event_id(s) if resumable else None))
                    seq = s
                chunk = b"".join(parts)
                stream.mark_taken(seq)
                if stream.finished and seq >= stream.last_seq:
                    await ex.body(chunk)
                    stream.mark_written(seq)
                    delivered = True
                    break
                if polled:
                    await ex.body(chunk + format_retry(retry_ms))
                    stream.mark_written(seq)
                    break
                if chunk or not started:
                    # The first write goes out even when empty: it sends the response head, which a
                    # server may hold until the first body write (ours does), so a resuming GET with
                    # nothing pending yet is not left without a status until the next event.
                    await ex.body(chunk, more=True)
                    stream.mark_written(seq)
                started = True
                # Only the wait is bounded by the poll deadline, never a write: a write cut in
                # half would corrupt the stream.
                quiet_until = math.inf if keepalive is None else trio.current_time() + keepalive
                with trio.move_on_at(min(deadline, quiet_until)) as waited:
                    await stream.wait_after(seq, polls_seen if resumable else None)
                if waited.cancelled_caught:
                    if trio.current_time() < deadline:
                        await ex.body(KEEPALIVE, more=True)
                        continue
                    await ex.body(format_retry(retry_ms))
                    break
        except Disconnected:
            pass
        finally:
            stream.detach()
        nursery.cancel_scope.cancel()
    return delivered


async def pump_standalone(
    channel: trio.MemoryReceiveChannel[Message],
    stream: ReplayStream,
    backlog: list[tuple[int, bytes]],
) -> None:
    """Move the standalone stream's messages into its log (after a replayed backlog), until it ends."""
    for _, data in backlog:
        stream.append(data, droppable=True)  # a standalone stream carries notifications only
    try:
        async with channel:
            async for message in channel:
                stream.append(encode(message), droppable=isinstance(message, Notification))
    finally:
        stream.finish()
