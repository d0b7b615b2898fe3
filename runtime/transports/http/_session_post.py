"""The POST path of a session (handshake era): `initialize`, one request or message, a batch.

Each request's replies come back on a channel of its own; a client wanting JSON gets the final
answer as one body, one wanting SSE gets a resumable stream (``serve_stream``) in the session's
replay log. A client that closes its response abandons its requests: they are cancelled so they free
their place in the session's limits (at once for JSON, after ``abandon_after`` for SSE).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

import attrs
import trio

from ...protocol import (
    INTERNAL_ERROR,
    ErrorResponse,
    Malformed,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    cancelled_notification,
    encode,
    error_response,
)
from ...server._caller import Requester, owner_key
from ...tree._port import (
    SERVER_BUSY,
    CloseSseStream,
    RequestLimitReached,
    SessionBusy,
    TransportError,
    UnknownSession,
)
from ._events import ReplayStream, SessionStreams, format_event
from ._exchange import Disconnected, Exchange
from ._guard import SSE
from ._headers import SESSION_HEADER, SSE_HEADERS
from ._replies import final_reply, ready_reply, unless_disconnected
from ._state import AppState
from ._streaming import pump_replies
from ._streams import serve_stream


@attrs.frozen
class SessionPost:
    """POSTs that belong to a session: the handshake, then everything the session's client sends."""

    state: AppState

    async def accept(
        self, ex: Exchange, session_id: str | None, message: Notification | Response | ErrorResponse
    ) -> None:
        """A notification or response: handed over, 202 (or the transport's refusal). Also serves a
        stateless client's (`session_id` None), which needs nothing else."""
        try:
            await self.state.port.submit(session_id, message, caller=ex.caller)
        except TransportError as exc:
            await self.state.transport_error(ex, exc)
            return
        await ex.respond(202)

    async def initialize(self, ex: Exchange, request: Request, wants_sse: bool) -> None:
        state = self.state
        state.sweep()
        try:
            if state.auth is None:
                session_id = await state.port.create_session()
            else:  # bound to its creator: anyone else is told it does not exist
                session_id = await state.port.create_session(owner=owner_key(ex.caller.principal))
        except TransportError as exc:
            await state.transport_error(ex, exc)
            return
        send_replies, replies = trio.open_memory_channel[Message](state.options.reply_buffer)
        try:
            await state.port.submit(session_id, request, send_replies, caller=ex.caller)
        except TransportError as exc:
            send_replies.close()
            await state.port.close_session(session_id)
            await state.transport_error(ex, exc)
            return
        # The answer decides whether the session exists at all, so wait for it before any header goes
        # out: a refused initialize must not leave the client holding an id.
        final = await final_reply(state.port, replies, session_id, request.id)
        extra: list[tuple[str, str]] = []
        if isinstance(final, ErrorResponse):
            await state.port.close_session(session_id)
        else:
            extra.append((SESSION_HEADER, session_id))
        if not wants_sse:
            await ex.respond(200, encode(final), extra)
            return
        await ex.start(200, [("content-type", SSE), ("cache-control", "no-cache"), *extra])
        if extra:
            # Ids from the session's counter keep every event id unique in the session; the stream is
            # delivered in this one write, so nothing is kept for resumption.
            streams = state.session_streams(session_id)
            stream = streams.open()
            streams.discard(stream.key)
            seq = stream.append(encode(final))
            priming = format_event(b"", stream.event_id(0), state.options.retry_ms)
            await ex.body(priming + format_event(encode(final), stream.event_id(seq)))
        else:
            await ex.body(format_event(encode(final)))

    async def request(
        self, ex: Exchange, session_id: str, request: Request, wants_sse: bool, streams: SessionStreams
    ) -> None:
        """One request of a live session: handed to the port, its replies written as one JSON body or a
        resumable SSE stream."""
        state = self.state
        send_replies, replies = trio.open_memory_channel[Message](state.options.reply_buffer)
        try:
            await state.port.submit(session_id, request, send_replies, caller=ex.caller)
        except TransportError as exc:
            send_replies.close()
            await state.transport_error(ex, exc)
            return
        first = await ready_reply(replies)
        is_final = isinstance(first, Response | ErrorResponse) and first.id == request.id
        if not wants_sse:
            if is_final:
                replies.close()
                await ex.respond(200, encode(first))  # type: ignore[arg-type]
                return
            final = await unless_disconnected(
                ex, functools.partial(final_reply, state.port, replies, session_id, request.id, first)
            )
            if final is None:  # a JSON answer cannot be resumed: the request is abandoned
                await self.abandon(session_id, [request.id])
                return
            await ex.respond(200, encode(final))
            return
        stream = streams.open(label=f"POST stream of request {request.id!r}", requests=[request.id])
        if is_final:
            replies.close()
            if await self._deliver_at_once(ex, stream, encode(first)):  # type: ignore[arg-type]
                streams.discard(stream.key)
            return
        if isinstance(first, CloseSseStream):  # what pump_replies does with the items after it
            stream.request_poll()
        elif first is not None:
            stream.append(encode(first), droppable=isinstance(first, Notification))
        answered: set[RequestId] = set()
        await serve_stream(
            state,
            ex,
            streams,
            stream,
            functools.partial(pump_replies, replies, stream, [request.id], answered=answered),
            poll_after=state.options.sse_poll_after,
            if_unfollowed=functools.partial(
                self._abandon_unfollowed, session_id, stream, [request.id], answered
            ),
        )

    async def _deliver_at_once(self, ex: Exchange, stream: ReplayStream, answer: bytes) -> bool:
        """A POST's SSE response whose answer is already in: the head, the priming event and the answer
        in one write, exactly what ``write_stream`` would send for that log, without its tasks. True
        when written; else the answer stays in the log for a GET with ``Last-Event-ID``."""
        seq = stream.append(answer)
        stream.finish()
        await ex.start(200, SSE_HEADERS)
        priming = format_event(b"", stream.event_id(0), self.state.options.retry_ms)
        data = priming + format_event(answer, stream.event_id(seq))
        stream.mark_taken(seq)
        try:
            await ex.body(data)
        except Disconnected:
            return False
        stream.mark_written(seq)
        return True

    async def batch(
        self,
        ex: Exchange,
        session_id: str | None,
        items: Sequence[Message | Malformed],
        wants_sse: bool,
    ) -> None:
        """A 2025-03-26 batch: every item goes to the session; the answers come back together."""
        state = self.state
        # parse_payload refuses batches without a session: the 400 here is defensive.
        session_id = await state.live_session(ex, session_id)
        if session_id is None:
            return
        early: list[Message] = []
        channels: list[tuple[RequestId, trio.MemoryReceiveChannel[Message]]] = []
        for item in items:
            if isinstance(item, Malformed):
                early.append(item.reply)
                continue
            try:
                if isinstance(item, Request):
                    send_replies, replies = trio.open_memory_channel[Message](state.options.reply_buffer)
                    try:
                        await self._submit_patiently(session_id, item, send_replies, ex.caller)
                    except TransportError:
                        send_replies.close()
                        raise
                    channels.append((item.id, replies))
                else:
                    await self._submit_patiently(session_id, item, None)
            except UnknownSession as exc:
                await state.transport_error(ex, exc)
                return
            except TransportError as exc:
                if isinstance(item, Request):
                    code = SERVER_BUSY if isinstance(exc, RequestLimitReached) else INTERNAL_ERROR
                    early.append(error_response(item.id, code, str(exc)))
        if not channels and not early:
            await ex.respond(202)
            return
        if not wants_sse:
            answers: list[Message] = list(early)
            for request_id, replies in channels:
                answers.append(await final_reply(state.port, replies, session_id, request_id))
            await ex.respond(200, encode(answers))
            return
        streams = state.session_streams(session_id)
        stream = streams.open(
            label=f"POST stream of a batch of {len(items)}", requests=[rid for rid, _ in channels]
        )
        answered: set[RequestId] = set()
        for message in early:
            stream.append(encode(message))

        async def pump_all() -> None:
            async with trio.open_nursery() as inner:
                for request_id, replies in channels:
                    inner.start_soon(
                        functools.partial(
                            pump_replies, replies, stream, [request_id], finish=False, answered=answered
                        )
                    )
            stream.finish()

        ids = [request_id for request_id, _ in channels]
        await serve_stream(
            state,
            ex,
            streams,
            stream,
            pump_all,
            poll_after=state.options.sse_poll_after,
            if_unfollowed=functools.partial(self._abandon_unfollowed, session_id, stream, ids, answered),
        )

    async def abandon(self, session_id: str, request_ids: Sequence[RequestId]) -> None:
        """Cancel requests whose client closed the response they were waiting on, so they free their
        place in the session's limits (``notifications/cancelled``, as the client could have sent)."""
        self.state.stats.requests_abandoned += len(request_ids)
        for request_id in request_ids:
            note = cancelled_notification(request_id, "the client closed the HTTP response")
            with contextlib.suppress(TransportError):
                await self._submit_patiently(session_id, note, None)

    async def _abandon_unfollowed(
        self,
        session_id: str,
        stream: ReplayStream,
        request_ids: Sequence[RequestId],
        answered: set[RequestId],
    ) -> None:
        """A POST's SSE connection ended before its answers: the client may resume (GET with
        Last-Event-ID), and a disconnect alone is no cancellation. When no connection follows the
        stream for ``abandon_after`` seconds, though, nobody will: cancel what is still running."""
        abandon_after = self.state.options.abandon_after
        if abandon_after is None:
            return
        if await stream.wait_abandoned(abandon_after):
            await self.abandon(session_id, [rid for rid in request_ids if rid not in answered])

    async def _submit_patiently(
        self,
        session_id: str,
        item: Message,
        replies: trio.MemorySendChannel[Message] | None,
        caller: Requester | None = None,
    ) -> None:
        """``port.submit`` waiting out a full mailbox: for the items of a batch, and the cancellations
        of abandoned requests, which the server sends itself and has no client to retry them.

        A batch hands its items over all at once, faster than the session takes them in, so a full
        mailbox is waited for (up to the ``retry_after`` it names) instead of failing the rest of the
        batch. A request limit is not waited for: those items are answered with the error.
        """
        deadline: float | None = None
        while True:
            try:
                if caller is None:
                    await self.state.port.submit(session_id, item, replies)
                else:
                    await self.state.port.submit(session_id, item, replies, caller=caller)
            except RequestLimitReached:
                raise
            except SessionBusy as busy:
                now = trio.current_time()
                deadline = now + busy.retry_after if deadline is None else deadline
                if now >= deadline:
                    raise
                await trio.sleep(0.001)
            else:
                return
