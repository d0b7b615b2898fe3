"""One live owner per session: an ownership lease in Redis, forwarding to the owner, takeover on expiry.

The lease ``session:<id>`` (``_cluster_lease``) names the node whose actor runs the session; the owner
renews every lease it holds each third of the ttl and releases one when its actor stops. A node that
gets a request for a session it does not hold a live actor for *claims* it: it takes the lease if it
is free (a new session, or one whose owner stopped or died: that is the takeover, and the session is
resumed from the store), else it remembers the holder and *forwards*: the client's message goes to
the owner's own channel (``ClusterBus``), the owner submits it to its actor as if it came from its own
transport, and streams every answer (progress, logs, the response) back on the forwarding node's
channel. Forward rather than move the session on every request: a round-robin balancer would
otherwise move it at every call, splitting its in-flight requests and GET stream between nodes.

A forwarded request carries its caller (``Requester``: headers and principal), so it runs on the owner
as the same principal; the session's principal binding (the stored settings' ``owner``) is remembered
with the holder when a node finds the session owned elsewhere (``principals``), so every node refuses
another principal. Whatever the client sends later about the request (its answer to an elicitation,
sampling or roots request; a ``notifications/cancelled``) is forwarded the same way from whichever node
it reaches, and the owner's session actor routes it as if it came from its own transport. A request
that ends without a response (cancelled) ends the forwarding node's stream too (``ended``).

Failure: the forwarding node watches the lease while it waits. When the owner stops renewing it (it
died) or another node holds it, the forwarded request fails with a retryable JSON-RPC error instead of
hanging, and the next request claims the session afresh (a takeover once the dead owner's lease has
expired). An owner that no longer runs the session (idle there, closing) refuses with ``gone`` and the
forwarding node claims it for itself (polling the lease for up to a third of the ttl while the old
owner still holds it, then a retryable error); so does a forward that no node received (the owner is
gone). A session that ended meanwhile gets a plain "not found" error.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from mcpvisor.backends._redis_connection import RedisConnection

from ..protocol import ErrorResponse, Message, Request, Response
from ..protocol._jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, error_response
from ..server._caller import Requester
from ._cluster_bus import FORWARD, FORWARD_FAIL, FORWARD_REPLY, BusEvent, ClusterBus
from ._cluster_lease import Leases
from ._port import SessionBusy, TransportError, UnknownSession

logger = logging.getLogger("mcpvisor.runtime.tree")

#: Refusal reasons of an owner (``BusEvent.detail``).
GONE: Final = "gone"
BUSY: Final = "busy"
#: Not a refusal: the forwarded request ended without a response (cancelled by the client).
ENDED: Final = "ended"
#: How many times a message refused as ``gone`` (or sent to a node nobody listens for) is sent on to
#: yet another owner; waiting for the refusing owner's lease to be released is bounded by time instead.
MAX_REDO: Final = 5
#: How long, and how many, cancellations of requests not running yet are remembered.
EARLY_WINDOW: Final = 10.0
EARLY_CANCELS: Final = 1000

# KEYS: leases. ARGV: holder, ttl ms. Renews those the holder still has; returns the indexes it lost.
_RENEW_ALL: Final = """
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    table.insert(lost, i)
  end
end
return lost
"""


#: What a forwarded request of a session that ended meanwhile is answered (as HTTP's 404 says it).
SESSION_ENDED: Final = (
    "Not Found: unknown or expired session (it ended: deleted through another node, or expired); "
    "initialize a new session"
)


def _offer(replies: Any, message: Message) -> None:
    """Put an answer on the transport's channel; a reader that left (or fell behind) loses it."""
    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        replies.send_nowait(message)


class OwnerLost(TransportError):
    """The owner of a forwarded request's session stopped answering; the client should retry."""


class Ownership:
    """This node's side of session ownership (built when the server has a Redis session store)."""

    def __init__(self, bus: ClusterBus, url: str, prefix: str, *, ttl: float) -> None:
        self.bus = bus
        self.node_id = bus.node_id
        self.ttl = ttl
        self._conn = RedisConnection(url, owner=f"session leases of node {self.node_id}")
        self.leases = Leases(self._conn, prefix)
        #: Sessions whose lease this node holds.
        self.owned: set[str] = set()
        #: Sessions another node owns, as last seen: ``session id -> owner node``.
        self.remote: dict[str, str] = {}
        #: The principal key each of those sessions is bound to (its stored settings' ``owner``).
        self.principals: dict[str, str | None] = {}
        self._pending: dict[str, trio.MemorySendChannel[Message]] = {}
        self._sent: dict[str, tuple[str, Message, Requester | None, int, str]] = {}
        #: Runs a message again after the owner said it no longer has the session (set by the server):
        #: ``redo(session_id, message, replies, caller, attempt, refused_by)``.
        self.redo: Callable[[str, Message, Any, Requester | None, int, str], Awaitable[None]] | None = None
        #: Stops this node's actor of a session whose lease it lost (set by the server).
        self.on_lost: Callable[[str], None] | None = None
        #: Forwarded requests running here as the owner: ``token -> (origin node, session, request id)``;
        #: those the bus dropped while they ran (it restarted) are told they failed once it is back.
        self._serving: dict[str, tuple[str, str, Any]] = {}
        self._interrupted: dict[str, tuple[str, str, Any]] = {}
        #: Cancellations of requests not (yet) running here: ``(session id, request id) -> when``. A
        #: forwarded request may arrive after its own cancellation, sent through another node.
        self.early_cancels: collections.OrderedDict[tuple[str, Any], float] = collections.OrderedDict()
        #: Forwarded exchanges this node served as the owner, and sent as a non-owner.
        self.served = 0
        self.forwarded = 0
        bus.undelivered = self.on_undelivered
        bus.on_stop.append(self.on_bus_stop)
        bus.background.append(self.report_interrupted)

    async def aclose(self) -> None:
        await self._conn.aclose()

    def note_cancel(self, session_id: str, request_id: Any) -> None:
        """A cancellation of a request this session does not run: it may be on its way here."""
        now = trio.current_time()
        cancels = self.early_cancels
        cancels[(session_id, request_id)] = now
        while cancels and (len(cancels) > EARLY_CANCELS or next(iter(cancels.values())) < now - EARLY_WINDOW):
            cancels.popitem(last=False)

    def cancelled_early(self, session_id: str, request_id: Any) -> bool:
        """Was this request cancelled before it arrived (within ``EARLY_WINDOW``)? Forgets it."""
        when = self.early_cancels.pop((session_id, request_id), None)
        return when is not None and when >= trio.current_time() - EARLY_WINDOW

    def _name(self, session_id: str) -> str:
        return f"session:{session_id}"

    # ---- claiming ------------------------------------------------------------------------------------

    async def claim(self, session_id: str, principal: str | None = None) -> str | None:
        """Take the session's lease (None: this node owns it now), or the node that holds it.

        ``principal``: the key the stored session is bound to, kept for ``session_owner`` here."""
        holder = await self.leases.acquire_or_holder(self._name(session_id), self.node_id, self.ttl)
        if holder is None:
            self.owned.add(session_id)
            self.forget(session_id)
            return None
        self.remote[session_id] = holder
        self.principals[session_id] = principal
        return holder

    def forget(self, session_id: str) -> None:
        """Drop what this node remembers of another node's session (its owner, its principal)."""
        self.remote.pop(session_id, None)
        self.principals.pop(session_id, None)

    async def release(self, session_id: str) -> None:
        if session_id in self.owned:
            self.owned.discard(session_id)
            try:
                await self.leases.release(self._name(session_id), self.node_id)
            except Exception as exc:  # it expires on its own
                logger.info("node %s: releasing the lease of a session failed: %r", self.node_id, exc)

    async def renew_forever(self) -> None:
        """Renew every owned lease each third of the ttl (run in the bus's nursery)."""
        while True:
            await trio.sleep(self.ttl / 3)
            owned = sorted(self.owned)
            if not owned:
                continue
            try:
                lost = await self._conn.script(
                    _RENEW_ALL,
                    [self.leases.key(self._name(sid)) for sid in owned],
                    [self.node_id, str(max(1, int(self.ttl * 1000)))],
                )
            except Exception as exc:
                logger.warning("node %s: renewing session leases failed: %r", self.node_id, exc)
                continue
            for index in lost if isinstance(lost, list) else []:
                sid = owned[int(index) - 1]
                if sid not in self.owned:
                    continue  # released meanwhile
                self.owned.discard(sid)
                logger.warning("node %s: lost the lease of session %s", self.node_id, sid[:8])
                if self.on_lost is not None:
                    self.on_lost(sid)

    # ---- the forwarding node -------------------------------------------------------------------------

    def forward(
        self,
        session_id: str,
        owner: str,
        message: Message,
        replies: Any,
        caller: Requester | None = None,
        attempt: int = 0,
    ) -> None:
        """Send ``message`` to ``owner``; for a request, its answers arrive on ``replies``."""
        token = uuid.uuid4().hex if isinstance(message, Request) else ""
        if token:
            self._pending[token] = replies
            self._sent[token] = (session_id, message, caller, attempt, owner)
            if not self.bus.spawn(self._watch, token, session_id, owner, message):
                del self._pending[token], self._sent[token]
                raise SessionBusy(session_id, 1.0)
        self.forwarded += 1
        self.bus.send_nowait(
            BusEvent(
                FORWARD, self.node_id, session_id=session_id, message=message, token=token, caller=caller
            ),
            owner,
        )

    async def _watch(self, token: str, session_id: str, owner: str, message: Request) -> None:
        """Fail the forwarded request if the owner loses the session's lease while it runs.

        It runs in the bus's nursery: when the bus stops, ``on_bus_stop`` fails what is still pending."""
        while token in self._pending:
            await trio.sleep(self.ttl / 3)
            if token not in self._pending:
                return
            try:
                holder = await self.leases.holder(self._name(session_id))
            except Exception:
                continue
            if holder != owner:
                self.forget(session_id)
                why = "stopped" if holder is None else "lost the session"
                self._finish(
                    token,
                    error_response(
                        message.id,
                        INTERNAL_ERROR,
                        f"the node serving this session ({owner}) {why} while the request ran; "
                        "retry it (the session continues on another node)",
                        {"retryable": True},
                    ),
                )
                return

    def _finish(self, token: str, message: Message | None) -> None:
        self._sent.pop(token, None)
        replies = self._pending.pop(token, None)
        if replies is None:
            return
        if message is not None:
            _offer(replies, message)
        replies.close()

    def _retry_error(self, token: str, why: str) -> None:
        sent = self._sent.get(token)
        request = sent[1] if sent is not None else None
        error = None
        if isinstance(request, Request):
            error = error_response(request.id, INTERNAL_ERROR, f"{why}; retry it", {"retryable": True})
        self._finish(token, error)

    def on_undelivered(self, event: BusEvent, sure: bool) -> None:
        """A forwarded request that did not reach its owner: sure it did not (no node listens there:
        the owner is gone, this node's idea of it stale), claim the session afresh, as on ``gone``;
        else (publishing failed) it may have run: a retryable error."""
        if event.kind != FORWARD or not event.token or event.token not in self._pending:
            return
        if sure and self.redo is not None:
            sent = self._sent.pop(event.token)
            replies = self._pending.pop(event.token)
            self.forget(event.session_id)
            self.bus.spawn(self._redo, *sent, replies)
            return
        self._retry_error(event.token, "the request could not be sent to the node serving its session")

    def on_bus_stop(self) -> None:
        """This node's bus stopped (its Redis connection failed): the answers of every request it
        forwarded may be lost with it, and its lease watchers are gone; fail them now, retryably."""
        for token in list(self._pending):
            self._retry_error(token, "this node's connection to the cluster restarted while the request ran")
        self._interrupted.update(self._serving)
        self._serving.clear()

    async def report_interrupted(self) -> None:
        """Once the bus is back: tell each forwarding node that the requests this node served for it
        when the bus stopped will send nothing more (their answers went with the old connection)."""
        interrupted, self._interrupted = self._interrupted, {}
        for token, (origin, session_id, request_id) in interrupted.items():
            error = error_response(
                request_id,
                INTERNAL_ERROR,
                f"node {self.node_id} lost its connection to the cluster while the request ran; retry it",
                {"retryable": True},
            )
            self.bus.send_nowait(
                BusEvent(
                    FORWARD_FAIL,
                    self.node_id,
                    session_id=session_id,
                    message=error,
                    token=token,
                    detail=BUSY,
                ),
                origin,
            )

    def on_reply(self, event: BusEvent) -> None:
        replies = self._pending.get(event.token)
        if replies is None or event.message is None:
            return
        final = isinstance(event.message, Response | ErrorResponse)
        if final:
            self._finish(event.token, event.message)
            return
        _offer(replies, event.message)

    def on_fail(self, event: BusEvent) -> None:
        sent = self._sent.pop(event.token, None)
        replies = self._pending.pop(event.token, None)
        if replies is None or sent is None:
            return
        if event.detail == ENDED:  # no response to come (cancelled): the stream ends here too
            replies.close()
            return
        self.forget(event.session_id)
        if event.detail == GONE and self.redo is not None:
            # The owner no longer runs it (idle there, or it just stopped): claim it and run it here.
            self.bus.spawn(self._redo, *sent, replies)
            return
        if isinstance(event.message, ErrorResponse):
            _offer(replies, event.message)
        replies.close()

    async def _redo(
        self,
        session_id: str,
        message: Message,
        caller: Requester | None,
        attempt: int,
        refused_by: str,
        replies: Any,
    ) -> None:
        assert self.redo is not None
        try:
            await self.redo(session_id, message, replies, caller, attempt, refused_by)
        except UnknownSession:
            if isinstance(message, Request):
                _offer(replies, error_response(message.id, INVALID_REQUEST, SESSION_ENDED))
            replies.close()
        except TransportError as exc:
            if isinstance(message, Request):
                error = error_response(message.id, INTERNAL_ERROR, f"{exc}; retry it", {"retryable": True})
                _offer(replies, error)
            replies.close()

    # ---- the owner -----------------------------------------------------------------------------------

    async def serve(
        self,
        event: BusEvent,
        submit: Callable[[str, Message, Any, Requester | None], Awaitable[None]],
    ) -> None:
        """Run a forwarded message here and stream its answers back (run in the bus's nursery)."""
        self.served += 1
        message = event.message
        assert message is not None
        origin, token = event.origin, event.token
        send, receive = trio.open_memory_channel[Message](math.inf)
        try:
            await submit(event.session_id, message, send if token else None, event.caller)
        except UnknownSession:
            self._refuse(event, GONE)
            return
        except SessionBusy:
            self._refuse(event, BUSY)
            return
        except TransportError as exc:
            self._refuse(event, BUSY, str(exc))
            return
        if not token:
            return
        assert isinstance(message, Request)
        self._serving[token] = (origin, event.session_id, message.id)
        async with receive:
            async for reply in receive:
                self.bus.send_nowait(
                    BusEvent(
                        FORWARD_REPLY, self.node_id, session_id=event.session_id, message=reply, token=token
                    ),
                    origin,
                )
                if isinstance(reply, Response | ErrorResponse):
                    self._serving.pop(token, None)
                    return
        self._serving.pop(token, None)
        # Closed without a response: the client cancelled it. Its stream on the sender ends too.
        self.bus.send_nowait(
            BusEvent(FORWARD_FAIL, self.node_id, session_id=event.session_id, token=token, detail=ENDED),
            origin,
        )

    def _refuse(self, event: BusEvent, reason: str, text: str = "") -> None:
        message = event.message
        error = None
        if isinstance(message, Request) and reason == BUSY:
            error = error_response(
                message.id,
                INTERNAL_ERROR,
                text or "the session is busy on its node; retry",
                {"retryable": True},
            )
        if event.token:
            self.bus.send_nowait(
                BusEvent(
                    FORWARD_FAIL,
                    self.node_id,
                    session_id=event.session_id,
                    message=error,
                    token=event.token,
                    detail=reason,
                ),
                event.origin,
            )
