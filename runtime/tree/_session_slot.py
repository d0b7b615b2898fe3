"""What the server keeps about one session *outside* its actor, so it survives the actor's restarts.

The slot holds the current incarnation's ref, the requests accepted but not yet answered (each with its
``replies`` channel), and the standalone stream. Keeping the in-flight table here, filled by ``submit``
before the message even reaches the mailbox, is what lets the runtime keep the ServerPort promise of one
final reply per request: when an incarnation dies (crash, close, shutdown), every request it held,
running or still queued in its mailbox, is answered -32603 from this table.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, ClassVar

import attrs
import trio

from ..actors import ActorRef
from ..protocol import INTERNAL_ERROR, Message, RequestId, error_response
from ._port import StandaloneSink
from ._session_label import session_label


@attrs.define(eq=False)
class InFlight:
    """One accepted request: where its replies go and the scope a ``notifications/cancelled`` cancels."""

    request_id: RequestId
    replies: trio.MemorySendChannel[Message]
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    #: Headers and principal from the transport (``Requester``); None over stdio and in memory.
    caller: Any = None

    def fail(self, message: str) -> None:
        """The final -32603 (best effort: a full channel is closed without it, and the transport
        answers -32603 itself when ``replies`` closes with no final reply)."""
        with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.replies.send_nowait(error_response(self.request_id, INTERNAL_ERROR, message))
        self.replies.close()


@attrs.define(eq=False)
class SessionSlot:
    session_id: str
    #: The principal that created the session (``Principal.key``; None on a server without
    #: authentication). Only it may use the session: anyone else is told it does not exist.
    owner: str | None = attrs.field(default=None, kw_only=True)
    last_activity: float = attrs.field(factory=trio.current_time)
    ref: ActorRef | None = None
    in_flight: dict[RequestId, InFlight] = attrs.field(factory=dict)
    #: Where its messages not tied to a request go: the GET streams channel, or a transport's sink.
    standalone: StandaloneSink | None = None
    #: Notifications the current standalone stream refused because its reader fell behind.
    standalone_dropped: int = 0
    #: Set by close_session / the idle timer: the session ends for good and its values are dropped.
    closing: bool = False
    close_reason: str = ""
    #: A closing session whose values stay in the store until their TTL (closed for crashing too
    #: often: its client may re-open it, an operator may inspect it).
    keep_values: bool = False
    #: The handshake completed (the settings are in the store); until then a crash means the
    #: ``initialize`` failed and no session was established.
    initialized: bool = False
    #: Set once the session's whole supervision subtree has ended.
    done: trio.Event = attrs.field(factory=trio.Event)
    incarnations: int = 0
    #: The session began in another process (or an earlier life of this one): its first incarnation
    #: loads the settings from the store, as a restarted one does, instead of waiting for initialize.
    resumed: bool = False
    #: The negotiated idle lifetime (the server's until initialize), and the IdleReaper's deadline.
    idle_timeout: float = math.inf
    reaper_deadline: float = math.inf
    #: The per-session supervisor's handle in the SessionSupervisor (what terminate_child takes).
    tree: Any = None
    #: On a shared store: when (trio time) this node last wrote the settings record, whose TTL a
    #: node serving the session refreshes (``_shared_session``).
    record_written: float = -math.inf
    #: The session subscribed to something on the event bus (resources/subscribe), so its end must
    #: unsubscribe it; most sessions never do, and skip that call to the bus actor.
    subscribed: bool = False
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _label: str | None = attrs.field(default=None, init=False)

    #: How crash texts name what this slot holds ("session"; a state handle says "state handle").
    kind: ClassVar[str] = "session"

    def crash_closed_hint(self, resume: bool = False) -> str:
        """What the client can do once the keeper gave up on this session (its values stay)."""
        reopen = (
            "send a request with the same Mcp-Session-Id (Streamable HTTP) to re-open it, or initialize"
            " a new session"
            if resume
            else "initialize a new session"
        )
        return f"Its stored values are kept until they expire; {reopen}"

    @property
    def label(self) -> str:
        """``session_label(session_id)``, computed once (the child id, the keeper's and the actor's
        names and the log lines of one session all use it)."""
        label = self._label
        if label is None:
            label = self._label = session_label(self.session_id)
        return label

    def touch(self) -> None:
        self.last_activity = trio.current_time()

    def set_ref(self, ref: ActorRef | None) -> None:
        self.ref = ref
        if ref is not None:
            self.incarnations += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def fail_in_flight(self, message: str) -> None:
        entries = list(self.in_flight.values())
        self.in_flight.clear()
        for entry in entries:
            entry.fail(message)

    def deliver_standalone(self, message: Message) -> bool:
        """Put a message on the standalone stream; False when nobody listens or it is full (dropped)."""
        channel = self.standalone
        if channel is None:
            return False
        try:
            channel.send_nowait(message)
        except trio.WouldBlock:
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.standalone = None
            return False
        return True

    def close_standalone(self) -> None:
        if self.standalone is not None:
            self.standalone.close()
            self.standalone = None
