"""The RunningServer's side of forwarding: what a node does with a session another node owns.

A mixin, so ``_runtime`` keeps only one-line hooks: ``submit`` of a session owned elsewhere forwards
to its owner with the caller (``_forward``), a DELETE is forwarded and waited for (``_close_remote``),
a GET stream for it is kept here and fed by the bus (``_remote_stream``), and forwarded messages that
reach the owner run through its ordinary ``submit`` (``_serve_forwarded``).

A DELETE through a non-owner is a request to the owner, answered once the owner has ended the session
(values dropped, tombstone written, every node told). When the owner does not confirm in time (it
died, lost the lease, or is stuck), this node ends the session in the store itself, as the owner would
have: a DELETE is global and must not be lost with a dead node. The owner, if it still runs, hears the
end on the bus and stops its actor.
"""

from __future__ import annotations

import logging
import math
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final

import trio

from ..protocol import Message, Notification, Request, Response, parse_cancelled
from ..server._caller import Requester
from ._cluster_bus import FORWARD, FORWARD_FAIL, FORWARD_REPLY, BusEvent
from ._cluster_owner import MAX_REDO, OwnerLost
from ._event_bus import EndedEverywhere
from ._port import SessionBusy, UnknownSession
from ._session_label import session_label
from ._session_settings import SETTINGS_KEY
from ._shared_session import tombstone

if TYPE_CHECKING:
    from ._cluster_owner import Ownership

logger = logging.getLogger("mcpvisor.runtime.tree")

#: A DELETE through a node that does not own the session, forwarded to the owner (never a client's).
CLOSE_METHOD: Final = "mcpvisor/cluster/closeSession"


def _is_close(message: Message) -> bool:
    return isinstance(message, Request) and message.method == CLOSE_METHOD


def _answer(replies: Any, message: Message) -> None:
    with suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        replies.send_nowait(message)
    replies.close()


def route_forwarding(running: Any, event: BusEvent) -> bool:
    """Handle a forwarding event (True), or leave it to the EventBus (False)."""
    ownership: Ownership = running.ownership
    if event.kind == FORWARD:
        running.cluster.spawn(ownership.serve, event, running._serve_forwarded)
        return True
    if event.kind == FORWARD_REPLY:
        ownership.on_reply(event)
        return True
    if event.kind == FORWARD_FAIL:
        ownership.on_fail(event)
        return True
    return False


class ForwardingMixin:
    ownership: Ownership | None
    _remote_streams: dict[str, trio.MemorySendChannel[Message]]
    sessions: Any
    store: Any
    _shutdown_grace: float

    def _forward(
        self, session_id: str, message: Message, replies: Any, caller: Requester | None = None
    ) -> bool:
        """Send ``message`` to the session's owner if another node owns it (True), else False."""
        ownership = self.ownership
        if ownership is None:
            return False
        owner = ownership.remote.get(session_id)
        if owner is None:
            return False
        ownership.forward(session_id, owner, message, replies, caller)
        return True

    def _note_cancel(self, slot: Any, message: Message) -> None:
        """``submit``'s hook: a ``notifications/cancelled`` for a request the session does not run
        (yet) is remembered, since a forwarded request may reach the owner after its cancellation."""
        if (
            self.ownership is None
            or type(message) is not Notification
            or message.method != "notifications/cancelled"
        ):
            return
        params = parse_cancelled(message.params)
        if params is not None and params.request_id is not None and params.request_id not in slot.in_flight:
            self.ownership.note_cancel(slot.session_id, params.request_id)

    def _remote_principal(self, session_id: str) -> str | None:
        """``session_owner`` of a session another node owns: its stored principal binding."""
        return None if self.ownership is None else self.ownership.principals.get(session_id)

    async def _close_remote(self, session_id: str) -> None:
        """A DELETE of a session another node owns: the owner ends it, or (no word from it) this node."""
        ownership = self.ownership
        if ownership is None or session_id not in ownership.remote:
            return
        send, answers = trio.open_memory_channel[Message](math.inf)
        request = Request(f"close-{uuid.uuid4().hex}", CLOSE_METHOD, None)
        with trio.move_on_after(self._shutdown_grace + ownership.ttl), suppress(SessionBusy):
            self._forward(session_id, request, send)
            async with answers:
                async for answer in answers:
                    if isinstance(answer, Response):
                        ownership.forget(session_id)
                        return
                    break  # an error: the owner stopped, lost the session, or is busy
        logger.warning(
            "session %s: its node did not confirm a DELETE; ending it in the store from node %s",
            session_label(session_id),
            ownership.node_id,
        )
        await self._end_in_store(session_id)

    async def _end_in_store(self, session_id: str) -> None:
        """End a session everywhere without its actor: what its owner does on a DELETE."""
        assert self.ownership is not None
        self.ownership.forget(session_id)
        with trio.move_on_after(self._shutdown_grace) as scope:
            scope.shield = True
            try:
                await self.store.drop_session(session_id)
                await self.store.put(session_id, SETTINGS_KEY, tombstone("closed by the client"))
            except Exception as exc:  # the store's own error: what every node would meet now
                logger.warning(
                    "session %s: ending it in the store failed: %r", session_label(session_id), exc
                )
        self._bus_send(EndedEverywhere(session_id), "a session's end")  # type: ignore[attr-defined]

    def _remote_stream(self, session_id: str) -> trio.MemoryReceiveChannel[Message]:
        old = self._remote_streams.pop(session_id, None)
        if old is not None:
            old.close()
        send, receive = trio.open_memory_channel[Message](256)
        self._remote_streams[session_id] = send
        return receive

    def _offer_remote(self, session_id: str, message: Message) -> bool:
        channel = self._remote_streams.get(session_id)
        if channel is None:
            return False
        try:
            channel.send_nowait(message)
        except trio.WouldBlock:
            pass  # a slow reader loses notifications, as on a local GET stream
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            del self._remote_streams[session_id]
            return False
        return True

    async def _serve_forwarded(
        self, session_id: str, message: Message, replies: Any, caller: Requester | None = None
    ) -> None:
        """A message another node forwarded: run it here if this node runs the session."""
        slot = self.sessions.get(session_id)
        if slot is None or slot.closing:
            raise UnknownSession(session_id)  # not (or no longer) ours: the sender claims it
        if _is_close(message):
            await self.close_session(session_id)  # type: ignore[attr-defined]
            assert isinstance(message, Request)
            _answer(replies, Response(message.id, {}))
            return
        assert self.ownership is not None
        if isinstance(message, Request) and self.ownership.cancelled_early(session_id, message.id):
            replies.close()  # cancelled through another node before it got here: never run, no answer
            return
        await self.submit(session_id, message, replies, caller)  # type: ignore[attr-defined]

    async def _redo(
        self,
        session_id: str,
        message: Message,
        replies: Any,
        caller: Requester | None,
        attempt: int,
        refused_by: str,
    ) -> None:
        """``refused_by`` no longer runs the session (it said ``gone``, or nobody listens for it: it
        died): claim the session (or find its new owner), then go.

        The message certainly did not run there, so it is not failed at once: while ``refused_by``
        still holds the lease (its actor stopping, or a dead node's lease not yet expired) this node
        polls the lease, a little longer each time, for up to a third of ``node_ttl`` (the bound of the
        lease watch), and runs the message as soon as it owns the session; then ``OwnerLost``."""
        ownership = self.ownership
        assert ownership is not None
        deadline = trio.current_time() + ownership.ttl / 3
        delay = 0.05
        while True:
            ownership.forget(session_id)
            if not await self.resume_session(session_id):  # type: ignore[attr-defined]
                if _is_close(message):  # it ended meanwhile: what the DELETE asked for
                    assert isinstance(message, Request)
                    _answer(replies, Response(message.id, {}))
                    return
                raise UnknownSession(session_id)
            owner = ownership.remote.get(session_id)
            if owner is None:
                break  # this node owns it now
            if owner != refused_by:  # another node took it: ask that one
                if attempt + 1 >= MAX_REDO:
                    raise OwnerLost(
                        f"the session moved between nodes {MAX_REDO} times while the request waited"
                    )
                ownership.forward(session_id, owner, message, replies, caller, attempt + 1)
                return
            if trio.current_time() + delay > deadline:
                raise OwnerLost(
                    f"the node serving this session ({owner}) stopped or does not answer; the "
                    "session continues on another node once that node's lease expires"
                )
            await trio.sleep(delay)
            delay = min(delay * 2, max(0.05, ownership.ttl / 10))
        if _is_close(message):
            await self.close_session(session_id)  # type: ignore[attr-defined]
            assert isinstance(message, Request)
            _answer(replies, Response(message.id, {}))
            return
        await self.submit(session_id, message, replies, caller)  # type: ignore[attr-defined]
