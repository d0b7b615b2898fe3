"""The seam between the server runtime and its transports.

Transports (stdio, Streamable HTTP, in-memory) only move bytes; everything MCP-shaped happens behind
``ServerPort``. Keeping the seam this narrow is what lets each transport be tested against a fake port and
lets the runtime be tested without a socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs
import trio

from ..protocol import Message

# Re-exported for code written before they moved down to the protocol layer.
from ..protocol._transport_controls import CLOSE_SSE_STREAM as CLOSE_SSE_STREAM
from ..protocol._transport_controls import SERVER_BUSY as SERVER_BUSY
from ..protocol._transport_controls import CloseSseStream as CloseSseStream
from ..server._caller import Requester


class TransportError(Exception):
    """Base of the errors a transport maps to its own wire form (HTTP status, JSON-RPC error)."""


@attrs.define(eq=False)
class UnknownSession(TransportError):
    """No live session has this id (never existed, expired, or closed): HTTP 404."""

    session_id: str

    def __str__(self) -> str:
        return f"unknown session {self.session_id!r}"


@attrs.define(eq=False)
class SessionBusy(TransportError):
    """The session's bounded mailbox is full: HTTP 429 with ``Retry-After``, or a JSON-RPC error."""

    session_id: str | None
    retry_after: float

    def __str__(self) -> str:
        return f"session {self.session_id!r} is busy; retry after {self.retry_after:g}s"


@attrs.define(eq=False)
class RequestLimitReached(SessionBusy):
    """Too many requests in flight: the session's ``max_requests_per_session`` running plus
    ``max_queued_requests_per_session`` waiting, or (``session_id`` None) ``max_stateless_requests``.

    HTTP answers 429 with ``Retry-After``; stdio and the in-memory connection answer the request with
    JSON-RPC error ``SERVER_BUSY`` (-32050). Unlike a full mailbox, waiting a moment does not help
    unless requests finish, so a pipe's connection refuses instead of waiting.
    """

    limit: int = 0

    def __str__(self) -> str:
        where = "server-wide (stateless)" if self.session_id is None else "in this session"
        return (
            f"too many requests in flight {where}: the limit is {self.limit}; "
            f"retry after {self.retry_after:g}s, once some of them finished"
        )


@attrs.define(eq=False)
class SessionLimitReached(SessionBusy):
    """``max_sessions`` sessions are live: HTTP 503 with ``Retry-After``; a clear error elsewhere."""

    limit: int = 0

    def __str__(self) -> str:
        return (
            f"the server holds its maximum of {self.limit} sessions (max_sessions); retry after "
            f"{self.retry_after:g}s, end idle sessions (DELETE), or raise max_sessions"
        )


class StandaloneSink(Protocol):
    """Where a session's messages not tied to a request go (``ServerPort.standalone_into``); a
    ``trio.MemorySendChannel[Message]`` is one.

    ``send_nowait`` is called by whatever task sends the message, with no checkpoint, so the messages
    keep the order they were sent in. It raises ``trio.WouldBlock`` when the reader is too far behind
    (the message is dropped and counted, as for a GET stream read too slowly), and
    ``trio.BrokenResourceError`` or ``trio.ClosedResourceError`` once nobody reads any more (the sink is
    let go). ``close`` is called when the session ends or another stream replaces this one.
    """

    def send_nowait(self, message: Message) -> None: ...

    def close(self) -> None: ...


class ServerPort(Protocol):
    """What a running server (``start_server``) offers a transport.

    Handshake era (2025-11-25 and earlier): ``initialize`` arrives with no session; the transport calls
    ``create_session()`` then ``submit(new_id, request, replies)`` and hands the id to the client
    (``Mcp-Session-Id``). Later messages name the id. Stateless era (2026-07-28): every request is
    ``submit(None, request, replies)``; the transport has already run ``check_stateless_headers``.
    """

    async def create_session(self, owner: str | None = None) -> str:
        """Start a SessionActor under the SessionSupervisor and return its new id. ``owner`` is the
        creating principal's key when the transport authenticates (docs/auth.md)."""
        ...

    def session_owner(self, session_id: str) -> str | None:
        """The ``owner`` a live session was created with (None: no authentication). A transport that
        authenticates answers another principal as if the session did not exist."""
        ...

    def has_session(self, session_id: str) -> bool:
        """True while the session is alive (including while its actor is being restarted)."""
        ...

    async def resume_session(self, session_id: str) -> bool:
        """True when the session is live, or could be resumed here: an id this process does not hold
        but whose negotiated settings are in the state store (the server restarted on a durable store,
        or another node created it on a shared one) gets a SessionActor that carries on from them,
        handshake done. False for an unknown, closed or expired session (HTTP 404)."""
        ...

    async def submit(
        self,
        session_id: str | None,
        message: Message,
        replies: trio.MemorySendChannel[Message] | None = None,
        caller: Requester | None = None,
    ) -> None:
        """Hand one client message to the runtime; returns as soon as it is accepted.

        ``caller`` is what the transport knows of the sender (HTTP headers, the authenticated
        principal); handlers read it as ``ctx.headers`` / ``ctx.principal``.

        For a ``Request``, ``replies`` is required: it receives, in order, the messages related to that
        request (progress and log notifications, server-to-client requests such as
        ``elicitation/create`` or ``sampling/createMessage``), then exactly one final ``Response`` or
        ``ErrorResponse`` for it, after which the runtime closes ``replies``. The runtime guarantees the
        final reply even when the handler or the whole session actor crashes (-32603). A transport that
        sees ``replies`` close with no final reply answers -32603 itself.

        Notifications and responses (the client's answers to server-to-client requests) pass
        ``replies=None``. Raises ``UnknownSession`` and ``SessionBusy`` (``RequestLimitReached`` when
        too many requests are in flight); never raises for bad content
        (that becomes an ``ErrorResponse`` on ``replies``).
        """
        ...

    def cancel_stateless(self, replies: trio.MemorySendChannel[Message]) -> None:
        """Cancel the stateless (2026-07-28) request submitted with ``replies``: its client went away
        (HTTP: closed the response stream) or cancelled it (stdio: ``notifications/cancelled``). Nothing
        more is sent on ``replies``, which the runtime closes. A no-op once the request is done."""
        ...

    def standalone_stream(self, session_id: str) -> trio.MemoryReceiveChannel[Message]:
        """Messages not tied to any request (list_changed, resources/updated, unrelated logs): the
        Streamable HTTP GET stream. One subscriber at a time; a new call replaces (closes) the previous
        stream. Raises ``UnknownSession``."""
        ...

    def standalone_into(self, session_id: str, sink: StandaloneSink) -> bool:
        """Like ``standalone_stream``, but the messages go into ``sink`` by the task that sends them,
        with no stream and no task of the transport's in between: for a transport whose one output
        already carries everything in order (the official SDK's in-memory streams). Replaces (closes)
        the previous stream or sink. False when the session's stream is not on this node (a session
        another node serves): use ``standalone_stream``. Raises ``UnknownSession``."""
        ...

    async def close_session(self, session_id: str) -> None:
        """End the session (HTTP DELETE, stdio EOF): cancel its requests, drop its values. Idempotent."""
        ...


#: Headers a transport passes along with a message, lower-cased (used for stateless header checks).
Headers = Mapping[str, str]
