"""Waiting for a request's replies: the ready answer, the first reply, the final JSON answer.

Both POST paths (sessions and 2026-07-28 stateless requests) read a request's reply channel the same
ways; these helpers hold those ways, and never write to the client themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import trio

from ...protocol import INTERNAL_ERROR, ErrorResponse, Message, Request, RequestId, Response, error_response
from ...tree._port import CloseSseStream, ServerPort, TransportError
from ...tree._session_label import session_label
from ._exchange import Exchange

T = TypeVar("T")

logger = logging.getLogger("mcpvisor.runtime.transports")

#: How long a POST waits for its answer before anything is written. An answer in by then leaves with
#: the response head (and the SSE priming event) in one write, with no task watching for a disconnect;
#: a slower one gets the head and priming event at this point, and the answer in a later write.
READY_WAIT: Final = 0.05


async def ready_reply(replies: trio.MemoryReceiveChannel[Message]) -> Message | None:
    """The request's first reply if it comes within ``READY_WAIT``, else None (nothing taken)."""
    with trio.move_on_after(READY_WAIT):
        try:
            return await replies.receive()
        except trio.EndOfChannel:
            return None  # the followers below see the closed channel themselves
    return None


async def first_reply(replies: trio.MemoryReceiveChannel[Message], request_id: RequestId) -> Message:
    """The first message a request sends, past control items a stateless stream cannot honour."""
    try:
        first: Message = await replies.receive()
        while isinstance(first, CloseSseStream):  # this stream cannot be resumed: ignore
            first = await replies.receive()
    except trio.EndOfChannel:
        return error_response(request_id, INTERNAL_ERROR, "Internal error")
    return first


async def unless_disconnected(ex: Exchange, wait: Callable[[], Awaitable[T]]) -> T | None:
    """``await wait()``, or None when the client disconnects first (the wait is then cancelled)."""
    result: T | None = None
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            await ex.wait_disconnect()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        result = await wait()
        nursery.cancel_scope.cancel()
    return result


async def final_reply(
    port: ServerPort,
    replies: trio.MemoryReceiveChannel[Message],
    session_id: str | None,
    request_id: RequestId,
    first: Message | None = None,
) -> Response | ErrorResponse:
    """Wait for the final answer of a request whose client wants plain JSON.

    Related notifications have nowhere to go and are dropped; a server-to-client request is
    answered on the client's behalf with an error, so the handler waiting for it fails fast
    instead of hanging.
    ``first`` is a reply already taken from ``replies`` (``ready_reply``).
    """
    with replies:  # close() rather than aclose(): the answer was awaited on it, no second checkpoint
        if first is not None and await _json_reply_item(port, first, session_id, request_id):
            return first  # type: ignore[return-value]  # (checked by _json_reply_item)
        async for message in replies:
            if await _json_reply_item(port, message, session_id, request_id):
                return message  # type: ignore[return-value]
    return error_response(request_id, INTERNAL_ERROR, "Internal error")


async def _json_reply_item(
    port: ServerPort, message: Message, session_id: str | None, request_id: RequestId
) -> bool:
    """True for the final answer; a server-to-client request is refused, anything else dropped."""
    if isinstance(message, Response | ErrorResponse) and message.id == request_id:
        return True
    if isinstance(message, Request) and session_id is not None:
        refusal = error_response(
            message.id,
            INTERNAL_ERROR,
            "the client asked for a JSON response, so it cannot receive server requests",
        )
        try:
            await port.submit(session_id, refusal)
        except TransportError:
            logger.debug("could not refuse %s for %s", message.method, session_label(session_id))
    return False
