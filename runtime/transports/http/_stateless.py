"""The stateless path (2026-07-28): a request with no session, whose HTTP status says its error.

That revision maps its errors onto statuses (-32601 is 404; bad `_meta`, a missing capability, an
unserved version are 400), so nothing is committed until the first reply is in. There is no session
to resume in, so a stream's events carry no ids, and a client that closes the connection before the
final answer has cancelled the request (the spec's cancellation for this revision).
"""

from __future__ import annotations

import functools
from typing import Final

import attrs
import trio

from ...protocol import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    UNSUPPORTED_PROTOCOL_VERSION,
    ErrorResponse,
    Message,
    Notification,
    Request,
    Response,
    check_param_headers,
    check_stateless_headers,
    encode,
    extract_request_context,
)
from ...tree._listen import LISTEN_METHOD
from ...tree._port import CloseSseStream, TransportError
from ._events import ReplayStream
from ._exchange import Exchange
from ._guard import SSE, accepted_types, accepts
from ._replies import final_reply, first_reply, ready_reply, unless_disconnected
from ._state import AppState
from ._streaming import pump_replies

_STATELESS_ERROR_STATUS: Final[dict[int, int]] = {
    METHOD_NOT_FOUND: 404,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
}
"""2026-07-28 over HTTP: the status that goes with a JSON-RPC error answering the whole request."""


def stateless_status(final: Response | ErrorResponse) -> int:
    if isinstance(final, Response):
        return 200
    return _STATELESS_ERROR_STATUS.get(final.error.code, 200)


@attrs.frozen
class StatelessPath:
    """POSTs with no session: a 2026-07-28 request (checked against its headers), or a request of a
    stateless client that lacks the envelope."""

    state: AppState

    async def enveloped(
        self, ex: Exchange, headers: dict[str, str], request: Request, wants_sse: bool
    ) -> None:
        """A request whose `params._meta` carries the protocol version: headers and envelope checked."""
        mismatch = check_stateless_headers(request, headers)
        if mismatch is None and request.method == "tools/call" and request.params is not None:
            mismatch = check_param_headers(
                request, headers, self.state.param_headers(request.params.get("name"))
            )
        if mismatch is not None:
            await ex.respond(400, encode(mismatch))
            return
        # The envelope is checked here too, so its refusals (`initialize` in the envelope is -32601, an
        # unserved version -32022) get their statuses whatever the port does with the request.
        context = extract_request_context(request)
        if isinstance(context, ErrorResponse):
            await ex.respond(stateless_status(context), encode(context))
            return
        if request.method == LISTEN_METHOD:
            # Its answer *is* a stream of notifications: SSE even in JSON-response mode, or nothing.
            if not accepts(accepted_types(headers.get("accept")), SSE):
                await ex.error(
                    406,
                    INVALID_REQUEST,
                    "Not Acceptable: subscriptions/listen answers with a stream: accept text/event-stream",
                    request_id=request.id,
                )
                return
            wants_sse = True
        await self.request(ex, request, wants_sse)

    async def request(self, ex: Exchange, request: Request, wants_sse: bool) -> None:
        """Hand `request` to the port with no session, then answer it (``_answer``)."""
        send_replies, replies = trio.open_memory_channel[Message](self.state.options.reply_buffer)
        try:
            await self.state.port.submit(None, request, send_replies, caller=ex.caller)
        except TransportError as exc:
            send_replies.close()
            await self.state.transport_error(ex, exc)
            return
        await self._answer(ex, request, send_replies, replies, wants_sse)

    async def _answer(
        self,
        ex: Exchange,
        request: Request,
        handle: trio.MemorySendChannel[Message],
        replies: trio.MemoryReceiveChannel[Message],
        wants_sse: bool,
    ) -> None:
        """The HTTP status must say what the JSON-RPC error says: wait for the first reply.

        When that is already the final answer (the common case) it goes out as one JSON body with its
        status; only a request that streams first (progress, logs) gets an SSE stream, whose status is
        200. A client gone before the final answer cancels the request: the port is told, through
        ``handle``, the channel the request was submitted with.
        """
        state = self.state
        first: Message | None = await ready_reply(replies)  # usually the answer: no watcher task then
        if first is None or isinstance(first, CloseSseStream):  # (not resumable: nothing to close)
            first = await unless_disconnected(ex, functools.partial(first_reply, replies, request.id))
        if first is None:
            state.stats.requests_abandoned += 1
            state.port.cancel_stateless(handle)
            replies.close()
            return
        if isinstance(first, Response | ErrorResponse) and first.id == request.id:
            replies.close()
            status = stateless_status(first)
            if status != 200 or not wants_sse or ex.json_ok:
                await ex.respond(status, encode(first))
                return
            stream = ReplayStream(0)
            stream.append(encode(first))
            stream.finish()
            await state.follow(ex, stream, after=0, resumable=False, prime=False)
            return
        if not wants_sse:
            final = await unless_disconnected(
                ex, functools.partial(final_reply, state.port, replies, None, request.id)
            )
            if final is None:
                state.stats.requests_abandoned += 1
                state.port.cancel_stateless(handle)
                replies.close()
                return
            await ex.respond(stateless_status(final), encode(final))
            return
        stream = ReplayStream(
            0,
            max_events=state.options.max_events_per_stream,
            on_drop=state.stats.count_dropped,
            label=f"POST stream of stateless request {request.id!r}",
        )
        stream.append(encode(first), droppable=isinstance(first, Notification))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump_replies, replies, stream, [request.id])
            delivered = await state.follow(ex, stream, after=0, resumable=False, prime=False)
            if not delivered and not stream.finished:
                state.stats.requests_abandoned += 1
                state.port.cancel_stateless(handle)  # the pump then ends with the request
