"""The RunningServer's side of forwarding: what a node does with a session another node owns.

A mixin, so ``_runtime`` keeps only one-line hooks: ``submit`` / ``close_session`` of a session owned
elsewhere forward to its owner (``_forward``), a GET stream for it is kept here and fed by the bus
(``_remote_stream``), and forwarded messages that reach the owner run through its ordinary ``submit``
(``_serve_forwarded``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import trio

from ..protocol import Message, Notification
from ._cluster_bus import FORWARD, FORWARD_FAIL, FORWARD_REPLY, BusEvent
from ._port import UnknownSession

if TYPE_CHECKING:
    from ._cluster_owner import Ownership

#: A DELETE through a node that does not own the session, forwarded to the owner (never a client's).
CLOSE_METHOD: Final = "mcpvisor/cluster/closeSession"


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

    def _forward(self, session_id: str, message: Message, replies: Any) -> bool:
        """Send ``message`` to the session's owner if another node owns it (True), else False."""
        ownership = self.ownership
        if ownership is None:
            return False
        owner = ownership.remote.get(session_id)
        if owner is None:
            return False
        ownership.forward(session_id, owner, message, replies)
        return True

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

    async def _serve_forwarded(self, session_id: str, message: Message, replies: Any) -> None:
        """A message another node forwarded: run it here if this node runs the session."""
        slot = self.sessions.get(session_id)
        if slot is None or slot.closing:
            raise UnknownSession(session_id)  # not (or no longer) ours: the sender claims it
        if isinstance(message, Notification) and message.method == CLOSE_METHOD:
            await self.close_session(session_id)  # type: ignore[attr-defined]
            return
        await self.submit(session_id, message, replies)  # type: ignore[attr-defined]

    async def _redo(self, session_id: str, message: Message, replies: Any) -> None:
        """The owner said it no longer runs the session: claim it (or find the new owner), then go."""
        ownership = self.ownership
        assert ownership is not None
        ownership.remote.pop(session_id, None)
        if not await self.resume_session(session_id):  # type: ignore[attr-defined]
            raise UnknownSession(session_id)
        await self.submit(session_id, message, replies)  # type: ignore[attr-defined]
