"""``start_server``: the supervision tree of one running MCP server, and the ``ServerPort`` it offers.

::

    ServerSupervisor (rest_for_one)
    ├── StateStoreServer     actor owning the SessionStateStore
    ├── TaskRuntime          actor owning the TaskBackend; runs task bodies under the TaskSupervisor
    ├── TaskSupervisor       DynamicSupervisor; one temporary child per running task body
    ├── EventBus             actor: topic fan-out (resources/updated, list_changed)
    ├── SessionSupervisor    DynamicSupervisor; one temporary child per session, whose keeper
    │   └── session <id>     runs the SessionActor and restarts it under the same id (transient)
    ├── HandleSupervisor     DynamicSupervisor of live state handles (SEP-2567), the same keeper
    │   └── handle <id>      running a HandleActor (``_handle_table``)
    ├── HandleReaper         stops handle actors left unused, ends handles past their lifetime
    ├── IdleReaper           one task closing every session idle past its negotiated lifetime
    ├── StatelessRunner      stateless (2026-07-28) requests
    └── Janitor              periodic expire() of both backends

Restart intensity is counted per session (see ``_session_keeper``): a session that crashes too often
is closed (-32603 answers, then ``UnknownSession``; its values stay in the store until their TTL, so
``resume_session`` can take it up again) instead of escalating to the
SessionSupervisor and, through rest_for_one, taking every other session down. Its child is temporary,
so its end is never counted against the SessionSupervisor.

Length: ``RunningServer`` is the ``ServerPort`` (a session's start, resumption, requests, close and
end: one lifecycle, which reads best in one place) and ``start_server`` builds it and its tree (its
long docstring is the reference of every option). The session table (_session_table.py), the
publisher (_publisher.py) and every child of the tree live in their own modules.
"""

from __future__ import annotations

import collections
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import attrs
import trio
from mcpvisor.backends import (
    MemorySessionStore,
    SessionStateStore,
    TaskBackend,
    check_session_store,
    check_task_backend,
    session_store_from_url,
    task_backend_from_url,
)
from mcpvisor.supervisors import (
    BRUTAL_KILL,
    INFINITY,
    NORMAL,
    ChildNotFound,
    ChildSpec,
    ChildType,
    DynamicSupervisor,
    MaxChildrenReached,
    Restart,
    Strategy,
    SupervisorHandle,
    SupervisorNotRunning,
    open_supervisor,
)
from mcpvisor.supervisors._restart_intensity import DEFAULTS

from ..actors import ActorExited, ActorRef, MailboxFull, Registry, actor_child_spec
from ..protocol import (
    HANDSHAKE_VERSIONS,
    INVALID_REQUEST,
    STATELESS_VERSIONS,
    ErrorResponse,
    Message,
    Notification,
    Request,
    error_response,
    extract_request_context,
    is_stateless_request,
    unsupported_version_error,
)
from ..server._caller import Requester
from ._cluster_bus import ClusterBus, cluster_target
from ._cluster_node import cluster_children, cluster_hooks, open_cluster_bus
from ._cluster_owner import Ownership
from ._cluster_routing import ForwardingMixin, route_forwarding
from ._cluster_stream_log import SharedStreamLog
from ._dispatch import handle_request as dispatch_request
from ._event_bus import (
    EVENT_BUS_NAME,
    EndedEverywhere,
    EventBus,
    FromCluster,
    ToSession,
    UnsubscribeAll,
    resource_topic,
)
from ._handle_table import HandleTable
from ._idle_reaper import IdleReaper
from ._janitor import Janitor
from ._limits import DEFAULT_LIMITS, ServerLimits
from ._listen import LISTEN_METHOD, Listeners
from ._port import (
    RequestLimitReached,
    SessionBusy,
    SessionLimitReached,
    StandaloneSink,
    UnknownSession,
)
from ._publisher import Publisher
from ._served_revisions import check_protocol, serves_handshake, serves_stateless
from ._served_server import ServedServer
from ._session_actor import HandleRequest, SessionDeps, SessionMessage, run_incarnation
from ._session_keeper import keep_session
from ._session_label import session_label
from ._session_settings import SETTINGS_KEY, stored_owner
from ._session_slot import InFlight, SessionSlot
from ._session_table import SessionTable
from ._shared_session import SessionEnded, check_live, is_live, tombstone
from ._state_store_server import (
    DEFAULT_OUTCOME_WAIT,
    DEFAULT_STORE_TIMEOUT,
    STATE_STORE_NAME,
    StateStoreClient,
    StateStoreServer,
)
from ._stateless_runner import StatelessRunner
from ._stats import ServerStats
from ._task_methods import TaskClient
from ._task_runtime import TASK_RUNTIME_NAME, TaskRuntime

logger = logging.getLogger("mcpvisor.runtime.tree")

#: How long ``submit`` waits for a crashed session's next incarnation before answering ``SessionBusy``.
_RESTART_WAIT = 5.0


def _plausible_session_id(session_id: str) -> bool:
    """Ours are ``uuid4().hex``: anything else was never ours, and is not worth a store round trip."""
    return len(session_id) == 32 and all(c in _HEX for c in session_id)


_HEX = frozenset("0123456789abcdef")


async def _reply_now(replies: trio.MemorySendChannel[Message], message: Message) -> None:
    with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await replies.send(message)
    replies.close()


@attrs.define(eq=False)
class RunningServer(ForwardingMixin):
    """A started server: the ``ServerPort`` transports drive, plus what tests and embedders inspect.

    ``start_server`` builds it from its parts (the session table, the publisher, the handle table,
    the stateless runner...); the one part that calls back into it, the IdleReaper closing idle
    sessions, is made here. Its supervision tree is attached while it runs (``attach_tree``).
    """

    server: ServedServer
    registry: Registry
    #: Every state operation goes through this client (and the StateStoreServer actor).
    store: StateStoreClient
    #: The bounds this server enforces (see docs/server.md "Limits").
    limits: ServerLimits
    #: The sessions held here, by id.
    sessions: SessionTable
    #: Notifications out to sessions and listen streams.
    publisher: Publisher
    #: The live state handles (2026-07-28, SEP-2567), under the ``handles`` supervisor.
    handles: HandleTable
    #: 2026-07-28 ``subscriptions/listen`` streams: EventBus subscribers beside the sessions
    listeners: Listeners
    #: The latest supervision events of the whole tree (sessions included), oldest first.
    events: collections.deque[Any]
    #: What the server (and its transports) refused, dropped or cancelled to stay bounded.
    stats: ServerStats
    _deps: SessionDeps = attrs.field(alias="deps")
    _requests: StatelessRunner = attrs.field(alias="requests")
    _record_event: Callable[[Any], None] = attrs.field(alias="record_event")
    _intensity: int = attrs.field(alias="session_restart_intensity")
    _period: float = attrs.field(alias="session_restart_period")
    _shutdown_grace: float = attrs.field(alias="shutdown_grace")
    _retry_after: float = attrs.field(alias="busy_retry_after")
    _resume: bool = attrs.field(alias="resume_sessions")
    protocol: str | None = attrs.field(converter=check_protocol)
    #: ``AuthSettings`` the HTTP transports apply (``start_server(auth=...)``, or the ``Server``'s own;
    #: docs/auth.md); None: no authentication.
    auth: Any = None
    #: This process's name in logs and on the cluster bus (``start_server(node_id=...)``).
    node_id: str = attrs.field(factory=lambda: uuid.uuid4().hex[:12])
    #: The Redis transport of the EventBus (None: single node, or no Redis backend).
    cluster: ClusterBus | None = attrs.field(default=None, init=False)
    #: This node's liveness lease keeper (None: no Redis task backend).
    liveness: Any = attrs.field(default=None, init=False)
    #: Session ownership leases and forwarding (None: no Redis session store; ``_cluster_owner``).
    ownership: Ownership | None = attrs.field(default=None, init=False)
    #: The SSE event log in Redis (None: no cluster); the HTTP transport mirrors its streams into it.
    stream_log: SharedStreamLog | None = attrs.field(default=None, init=False)
    #: GET streams open here for sessions another node owns (their events come through the bus).
    _remote_streams: dict[str, trio.MemorySendChannel[Message]] = attrs.field(factory=dict, init=False)
    _tree: SupervisorHandle | None = attrs.field(default=None, init=False)
    _reaper: IdleReaper = attrs.field(init=False)
    _resuming: dict[str, trio.Event] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self._reaper = IdleReaper(self._close_idle)
        self._deps.reaper = self._reaper
        self.handles.attach(lambda: self._child("handles") if self._tree is not None else None)

    def attach_tree(self, tree: SupervisorHandle | None) -> None:
        """``start_server``'s: the supervision tree this server runs in (None once it has stopped)."""
        self._tree = tree

    # ---- introspection ------------------------------------------------------------------------------

    def session_ids(self) -> list[str]:
        """Ids of the live sessions (restarting ones included, closing ones not)."""
        return self.sessions.live_ids()

    def session_actor(self, session_id: str) -> ActorRef | None:
        """The current incarnation's ref (None between incarnations); for tests and debugging."""
        return self.sessions.actor(session_id)

    def requests_in_flight(self, session_id: str) -> int:
        """The session's requests accepted and not yet answered, running or waiting for a turn."""
        return len(self.sessions.known(session_id).in_flight)

    def session_incarnations(self, session_id: str) -> int:
        """How many incarnations the session's actor has had (1 + restarts)."""
        return self.sessions.known(session_id).incarnations

    def handle_ids(self) -> list[str]:
        """The state handles live in this process (their actors running or restarting)."""
        return self.handles.live()

    def handle_actor(self, handle: str) -> ActorRef | None:
        """The handle's current actor (None if it is not live here); for tests and debugging."""
        return self.handles.actor(handle)

    def handle_incarnations(self, handle: str) -> int:
        """How many incarnations the handle's actor has had in this process (0: not live here)."""
        return self.handles.incarnations(handle)

    def tree_ready(self) -> bool:
        """Every child of the server's tree is running (false while a part of it restarts)."""
        return self._tree is not None and all(row.running for row in self._tree.which_children())

    @property
    def tree(self) -> SupervisorHandle:
        assert self._tree is not None, "the server is not running"
        return self._tree

    def _child(self, child_id: str) -> Any:
        return self.tree.which_child(child_id)

    # ---- notifications to sessions ------------------------------------------------------------------

    def deliver_to_owner(self, owner: str, message: Message) -> None:
        """The TaskRuntime's way out: a session-owned task's status notifications and requests go to
        the session's standalone stream (whatever incarnation runs it now, on whichever node)."""
        if owner.startswith("session:"):
            sid = owner.removeprefix("session:")
            if not self._to_session(sid, message) and self.cluster is not None:
                self._bus_send(ToSession(sid, message), "a message for a session on another node")

    def _to_session(self, session_id: str, message: Message) -> bool:
        """Put ``message`` on the session's GET stream if it is open on this node (else False)."""
        slot = self.sessions.get(session_id)
        if slot is None and session_id in self._remote_streams:
            return self._offer_remote(session_id, message)
        if slot is None or slot.standalone is None:
            return False
        slot.deliver_standalone(message)
        return True

    def _elsewhere(self, session_id: str, notification: Notification) -> bool:
        """The Publisher's question for a session owned here: is its GET stream on another node?
        Then the event goes there through the bus (True)."""
        slot = self.sessions.get(session_id)
        if slot is None or slot.standalone is not None or self.ownership is None:
            return False
        self._bus_send(ToSession(session_id, notification), "an event for a stream on another node")
        return True

    def _has_session(self, session_id: str) -> bool:
        return self.sessions.has(session_id)

    def _end_here(self, session_id: str, reason: str = "it ended on another node") -> None:
        """End this node's actor (and GET stream) of a session that ended elsewhere; the store is
        not touched (the node that ended it dropped its values)."""
        remote = self._remote_streams.pop(session_id, None)
        if remote is not None:
            remote.close()
        slot = self.sessions.get(session_id)
        if slot is None:
            return
        logger.info("session %s: %s, ending it on node %s", session_label(session_id), reason, self.node_id)
        if not slot.closing:
            slot.closing = True
            slot.close_reason = reason
        slot.keep_values = True
        slot.close_standalone()
        ref = slot.ref
        if ref is not None:
            ref.request_stop(NORMAL)

    def _hear(self, event: Any) -> None:
        """The ClusterBus's way in: another node's event, delivered by this node's EventBus (or, for
        forwarding, handled by the session ownership)."""
        if self.ownership is not None and self.cluster is not None and route_forwarding(self, event):
            return
        self._bus_send(FromCluster(event), "an event from another node")

    def _bus_send(self, msg: object, what: str) -> None:
        bus = self.registry.whereis(EVENT_BUS_NAME)
        if bus is None:
            return
        try:
            bus.send_nowait(msg)
        except (MailboxFull, ActorExited):
            self.stats.count_dropped()
            logger.warning("%s dropped: the event bus is busy or restarting", what)

    async def end_listens(self, grace: float = 1.0) -> None:
        """End every ``subscriptions/listen`` stream with its final result, waiting up to ``grace``
        seconds. A server about to stop calls it while its transports still run, so the result reaches
        the clients (they can tell a deliberate end from a lost connection)."""
        await self.listeners.end_all(grace)

    async def publish(self, topic: str, notification: Notification) -> int:
        """Hand ``notification`` to the EventBus; returns how many sessions it reached."""
        return await self.publisher.publish(topic, notification)

    async def notify_resource_updated(self, uri: str) -> int:
        """``notifications/resources/updated`` to every session subscribed to ``uri``."""
        return await self.publish(
            resource_topic(uri), Notification("notifications/resources/updated", {"uri": uri})
        )

    # ---- ServerPort ---------------------------------------------------------------------------------

    async def create_session(self, owner: str | None = None) -> str:
        session_id = uuid.uuid4().hex
        if self.ownership is not None:
            await self.ownership.claim(session_id)  # a new id: it is ours
        await self._start_slot(SessionSlot(session_id, owner=owner))
        return session_id

    def session_owner(self, session_id: str) -> str | None:
        """The principal that owns a live session (``Principal.key``), None without authentication; for a
        session another node owns, the binding in its stored settings (so it holds on every node)."""
        slot = self.sessions.slots.get(session_id)
        return self._remote_principal(session_id) if slot is None else slot.owner

    async def _start_slot(self, slot: SessionSlot) -> None:
        """Start the session's subtree under the SessionSupervisor (``SessionBusy`` at ``max_sessions``)."""
        sessions = self._child("sessions")
        if sessions is None:
            raise SessionBusy(None, self._retry_after)
        session_id = slot.session_id
        self.sessions.add(slot)
        remote = self._remote_streams.pop(session_id, None)
        if remote is not None:  # the client's GET stream is here already: it is the session's now
            slot.standalone = remote
        slot.idle_timeout = self._deps.idle_timeout
        spec = ChildSpec(
            slot.label,  # child ids reach the supervision log: never the id itself
            functools.partial(self._run_session, slot),
            restart=Restart.TEMPORARY,
            shutdown=self._shutdown_grace,
        )
        try:
            slot.tree = await sessions.start_child(spec)
            self._reaper.schedule(slot)  # after init: a resumed session's lifetime is its negotiated one
        except MaxChildrenReached:
            self.sessions.discard(session_id)
            self.stats.sessions_refused += 1
            limit = self.limits.max_sessions or 0
            raise SessionLimitReached(None, self._retry_after, limit) from None
        except BaseException:
            self.sessions.discard(session_id)
            raise

    async def resume_session(self, session_id: str) -> bool:
        if self.has_session(session_id):
            return True
        if not self._resume or not _plausible_session_id(session_id):
            return False
        pending = self._resuming.get(session_id)
        if pending is not None:  # another request for it is already looking: share its answer
            await pending.wait()
            return self.has_session(session_id)
        self._resuming[session_id] = done = trio.Event()
        try:
            record = await self.store.get(session_id, SETTINGS_KEY)
            if not is_live(record):
                return False  # never existed, ended (values dropped, a tombstone), or expired
            ending = self.sessions.get(session_id)
            if ending is not None:
                if not ending.keep_values:  # closing here meanwhile, for good
                    return False
                # Only its actor here is stopping (idle on this node, crashed too often): the session
                # lives on in the store, so once that actor is gone it starts again from there.
                with trio.move_on_after(self._shutdown_grace):
                    await ending.done.wait()
                if self.sessions.get(session_id) is not None:
                    return self.has_session(session_id)
            principal = stored_owner(record)
            if self.ownership is not None and await self.ownership.claim(session_id, principal) is not None:
                return True  # another node owns it: this node forwards to it (``submit``)
            await self._start_slot(SessionSlot(session_id, resumed=True, owner=principal))
            logger.info("session %s resumed from the state store", session_label(session_id))
            return True
        finally:
            del self._resuming[session_id]
            done.set()

    def has_session(self, session_id: str) -> bool:
        return self.sessions.has(session_id)

    async def submit(
        self,
        session_id: str | None,
        message: Message,
        replies: trio.MemorySendChannel[Message] | None = None,
        caller: Requester | None = None,
    ) -> None:
        is_request = isinstance(message, Request)
        if is_request and replies is None:
            raise TypeError("submit: a Request needs a replies channel")
        if session_id is None:
            await self._submit_stateless(message, replies, caller)
            return
        if session_id not in self.sessions.slots and self._forward(session_id, message, replies, caller):
            return
        slot = self.sessions.live(session_id)
        if (
            type(message) is Request
            and message.method == "initialize"
            and not serves_handshake(self.protocol)
        ):
            assert replies is not None
            requested = (message.params or {}).get("protocolVersion")
            await _reply_now(
                replies, unsupported_version_error(message.id, str(requested), STATELESS_VERSIONS)
            )
            await self.close_session(session_id)
            return
        if self._deps.shared and slot.initialized and type(message) is Request:
            await self._check_shared(slot)
        self._note_cancel(slot, message)  # a forwarded request may come after its cancellation
        slot.touch()
        entry: InFlight | None = None
        if isinstance(message, Request):
            assert replies is not None
            request_id = message.id
            if request_id in slot.in_flight:
                await _reply_now(
                    replies,
                    error_response(
                        request_id, INVALID_REQUEST, f"request id {request_id!r} is already in flight"
                    ),
                )
                return
            limit = self.limits.max_requests_per_session + self.limits.max_queued_requests_per_session
            if len(slot.in_flight) >= limit:
                self.stats.requests_refused += 1
                raise RequestLimitReached(session_id, self._retry_after, limit)
            entry = InFlight(request_id, replies, caller=caller)
        for _attempt in range(3):
            ref = slot.ref
            if ref is None or not ref.alive:
                ref = await self._wait_incarnation(slot)
            if entry is not None:
                slot.in_flight[entry.request_id] = entry
            try:
                ref.send_nowait(SessionMessage(message, entry))
            except MailboxFull:
                if entry is not None:
                    del slot.in_flight[entry.request_id]
                raise SessionBusy(session_id, self._retry_after) from None
            except ActorExited:
                if entry is not None:
                    del slot.in_flight[entry.request_id]
                continue
            return
        raise SessionBusy(session_id, self._retry_after)

    async def _check_shared(self, slot: SessionSlot) -> None:
        """Before a request of a session on a shared store: did it end on another node (or expire)?
        Then end it here too and answer ``UnknownSession`` (404), as every node does from now on."""
        try:
            await check_live(self.store, slot, trio.current_time())
        except SessionEnded:
            logger.info(
                "session %s ended on another node or expired in the store: ending it here",
                session_label(slot.session_id),
            )
            if not slot.closing:
                slot.closing = True
                slot.close_reason = "it ended on another node or expired"
                slot.keep_values = True  # nothing of it is left to drop, or another node dropped it
                ref = slot.ref
                if ref is not None:
                    ref.request_stop(NORMAL)
            raise UnknownSession(slot.session_id) from None
        except Exception as exc:  # the backend's own error, or StateStoreUnavailable
            # The request will meet the same outage and report it; refusing it here would say less.
            logger.info(
                "session %s: could not check its stored record (%s); serving the request",
                session_label(slot.session_id),
                exc,
            )

    async def _wait_incarnation(self, slot: SessionSlot) -> ActorRef:
        with trio.move_on_after(_RESTART_WAIT):
            while True:
                ref = slot.ref
                if ref is not None and ref.alive:
                    return ref
                if slot.closing or self.sessions.get(slot.session_id) is not slot:
                    raise UnknownSession(slot.session_id)
                await slot.wait_changed()
        raise SessionBusy(slot.session_id, self._retry_after)

    async def _submit_stateless(
        self,
        message: Message,
        replies: trio.MemorySendChannel[Message] | None,
        caller: Requester | None = None,
    ) -> None:
        if type(message) is not Request:
            return  # notifications and responses without a session have nowhere to go
        assert replies is not None
        if message.method == "initialize" and not is_stateless_request(message):
            await _reply_now(
                replies,
                error_response(
                    message.id,
                    INVALID_REQUEST,
                    "initialize starts a session: the transport must create_session() and submit it there",
                ),
            )
            return
        if not is_stateless_request(message):
            await _reply_now(
                replies,
                error_response(
                    message.id,
                    INVALID_REQUEST,
                    f"Bad request: {message.method} has no session id. Handshake-era clients send initialize "
                    "first and then the session id it returned (Mcp-Session-Id); 2026-07-28 clients put "
                    "io.modelcontextprotocol/protocolVersion and clientCapabilities in params._meta",
                ),
            )
            return
        if serves_stateless(self.protocol):
            ctx = extract_request_context(message)
        else:  # the handshake era only: -32022 naming its revisions sends the client to initialize
            ctx = extract_request_context(message, supported=(), advertised=HANDSHAKE_VERSIONS)
        if isinstance(ctx, ErrorResponse):
            await _reply_now(replies, ctx)
            return
        runner = self._requests
        if runner is None or not runner.running:
            raise SessionBusy(None, self._retry_after)
        if runner.full():
            self.stats.requests_refused += 1
            raise RequestLimitReached(None, self._retry_after, runner.max_concurrent)
        listen = self.listeners.serve if message.method == LISTEN_METHOD else None
        runner.start(message, replies, ctx, listen, caller=caller)

    def cancel_stateless(self, replies: trio.MemorySendChannel[Message]) -> None:
        runner = self._requests
        if runner is not None:
            runner.cancel(replies)

    def standalone_stream(self, session_id: str) -> trio.MemoryReceiveChannel[Message]:
        if (
            session_id not in self.sessions.slots
            and self.ownership is not None
            and session_id in self.ownership.remote
        ):
            return self._remote_stream(session_id)
        slot = self.sessions.live(session_id)
        slot.close_standalone()
        send, receive = trio.open_memory_channel[Message](256)
        slot.standalone = send
        slot.standalone_dropped = 0
        return receive

    def standalone_into(self, session_id: str, sink: StandaloneSink) -> bool:
        if (
            session_id not in self.sessions.slots
            and self.ownership is not None
            and session_id in self.ownership.remote
        ):
            return False  # another node's session: its stream comes through ``standalone_stream``
        slot = self.sessions.live(session_id)
        slot.close_standalone()
        slot.standalone = sink
        slot.standalone_dropped = 0
        return True

    async def close_session(self, session_id: str) -> None:
        slot = self.sessions.get(session_id)
        if slot is None:
            await self._close_remote(session_id)  # another node's: it ends it (or this node does)
            return
        if not slot.closing:
            slot.closing = True
            slot.close_reason = "closed by the client"
        sessions = self._child("sessions")
        if sessions is not None:
            with suppress(ChildNotFound, SupervisorNotRunning):
                # by handle, not id: a dynamic supervisor finds a handle without a scan
                await sessions.terminate_child(
                    slot.tree if slot.tree is not None else session_label(session_id)
                )
        if not slot.done.is_set():  # usually set by now: skip Event.wait's checkpoint
            await slot.done.wait()

    # ---- one session's subtree ----------------------------------------------------------------------

    async def _run_session(
        self, slot: SessionSlot, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await keep_session(
                slot,
                self._deps,
                intensity=self._intensity,
                period=self._period,
                on_event=self._record_event,
                incarnation=run_incarnation,
                task_status=task_status,
            )
        finally:
            await self._session_ended(slot)

    def _close_idle(self, slot: SessionSlot) -> None:
        """The IdleReaper's verdict. On a store of this process only, end the session for good (its
        values are dropped). On a shared store the verdict is this node's only: stop the actor here
        and keep what is stored, which another node may be using (``_shared_session``)."""
        slot.closing = True
        if self._deps.shared:
            logger.info(
                "session %s idle here for %gs: stopping its actor on this node (it stays in the store)",
                session_label(slot.session_id),
                slot.idle_timeout,
            )
            slot.keep_values = True
            slot.close_reason = f"idle on this node for {slot.idle_timeout:g}s"
        else:
            logger.info("session %s idle for %gs: closing", session_label(slot.session_id), slot.idle_timeout)
            slot.close_reason = f"idle for {slot.idle_timeout:g}s"
        ref = slot.ref
        if ref is not None:
            ref.request_stop(NORMAL)  # a normal end: the keeper does not restart it

    async def _session_ended(self, slot: SessionSlot) -> None:
        sid = slot.session_id
        self.sessions.remove(slot)
        self._reaper.forget(slot)
        slot.set_ref(None)  # wakes submitters waiting for an incarnation that will not come
        slot.close_standalone()
        if self.ownership is not None and self.sessions.get(sid) is None:
            await self.ownership.release(sid)
        slot.fail_in_flight(
            f"session closed ({slot.close_reason})" if slot.closing else "server is shutting down"
        )
        try:
            if slot.closing and not self._ended_now(slot):
                with trio.move_on_after(self._shutdown_grace) as scope:
                    scope.shield = True
                    try:
                        if not slot.keep_values:
                            await self.store.drop_session(sid)
                            if self._deps.shared and slot.initialized:
                                # Every node must see that it ended: a tombstone, not just absence.
                                await self.store.put(sid, SETTINGS_KEY, tombstone(slot.close_reason))
                                # ... and nodes serving it now end their actors and GET streams at once.
                                self._bus_send(EndedEverywhere(sid), "a session's end")
                        bus = self.registry.whereis(EVENT_BUS_NAME)
                        if bus is not None and (slot.subscribed or self._deps.shared):
                            await bus.call(UnsubscribeAll(sid))
                    except Exception as exc:
                        logger.warning("session %s: dropping its values failed: %r", session_label(sid), exc)
        finally:
            slot.done.set()

    def _ended_now(self, slot: SessionSlot) -> bool:
        """The end of a closing session done without waiting, when it can be (the usual case: nothing
        subscribed, a store of this process, idle): True when nothing is left to do. Else the caller
        does it in a shielded, bounded wait."""
        if slot.subscribed or self._deps.shared:
            return False  # an unsubscribe on the event bus, or a tombstone: round trips
        if slot.keep_values:
            return True
        try:
            return self.store.try_drop_now(slot.session_id)
        except Exception as exc:
            logger.warning("session %s: dropping its values failed: %r", session_label(slot.session_id), exc)
            return True


@asynccontextmanager
async def start_server(
    server: ServedServer,
    *,
    session_state_store: str | SessionStateStore = "memory://",
    task_backend: str | TaskBackend = "memory://",
    mailbox_size: int = 256,
    session_idle_timeout: float = 30 * 60.0,
    session_restart_intensity: int = DEFAULTS.intensity,
    session_restart_period: float = DEFAULTS.period,
    max_sessions: int | None = DEFAULT_LIMITS.max_sessions,
    max_requests_per_session: int = DEFAULT_LIMITS.max_requests_per_session,
    max_queued_requests_per_session: int = DEFAULT_LIMITS.max_queued_requests_per_session,
    max_stateless_requests: int = DEFAULT_LIMITS.max_stateless_requests,
    shutdown_grace: float = 5.0,
    busy_retry_after: float = 1.0,
    expire_interval: float = 60.0,
    state_store_timeout: float | None = DEFAULT_STORE_TIMEOUT,
    state_store_outcome_wait: float = DEFAULT_OUTCOME_WAIT,
    resume_sessions: bool = True,
    backend_check_timeout: float | None = 10.0,
    on_event: Callable[[Any], None] | None = None,
    handle_request: HandleRequest | None = None,
    handle_idle_timeout: float = 30 * 60.0,
    handle_ttl: float = 24 * 3600.0,
    max_handles: int | None = None,
    protocol: str | None = None,
    task_ttl: float | None = 3600.0,
    max_task_ttl: float | None = 86400.0,
    task_poll_interval: float = 1.0,
    max_running_tasks: int | None = None,
    task_node: str = "default",
    task_clock: Callable[[], float] = time.time,
    task_list_page: int = 50,
    task_prelude_wait: float = 0.1,
    shared_state_store: bool | None = None,
    auth: Any = None,
    node_id: str | None = None,
    node_ttl: float = 10.0,
) -> AsyncIterator[RunningServer]:
    """Run ``server`` under its supervision tree for the body's duration; yields the ``ServerPort``.

    Backends are given as URLs (``memory://``, ``sqlite:///file.db``, ``redis://host:port/0``; the server
    then owns and closes them) or as objects (the caller keeps ownership). ``mailbox_size`` bounds each
    session's mailbox (``SessionBusy`` when full); ``session_idle_timeout`` is the longest a session may
    stay idle (a client may negotiate a shorter one); a session crashing more than
    ``session_restart_intensity`` times within ``session_restart_period`` seconds is closed.
    ``handle_request`` replaces the MCP dispatcher (tests, custom protocols). Every
    ``expire_interval`` seconds the janitor has both backends drop what is past its TTL.
    A state operation that has not started within ``state_store_timeout`` seconds is dropped and its
    caller told "not applied"; one already running in the backend then is waited for up to
    ``state_store_outcome_wait`` more seconds, after which its caller is told "outcome unknown".
    ``resume_sessions`` lets a session id this process does not hold, but whose negotiated settings are
    in the state store (a server restarted on a durable store, another node on a shared one), carry on
    here instead of getting 404 (see ``ServerPort.resume_session``).
    ``shared_state_store`` says whether other processes may serve the same sessions from the state
    store (None: every store but a ``MemorySessionStore`` may be shared). A session on a shared store
    is checked against its stored record before each request (a DELETE through another node ends it
    here too), an idle lifetime stops only this node's actor, and its record expires when no node has
    used it for its idle lifetime (docs/server.md, "Many nodes on one store").

    Before anything is served both backends are checked (a probe value written, read and dropped in
    the state store; one task record read): one that fails, or does not answer within
    ``backend_check_timeout`` seconds, raises ``BackendUnavailable`` with a one-line reason, instead of
    every request failing later. ``backend_check_timeout=None`` skips the check.

    Limits (``running.limits``; docs/server.md "Limits"): at most ``max_sessions`` live sessions
    (``SessionLimitReached``, HTTP 503; None for no cap); per session ``max_requests_per_session``
    requests run at once and ``max_queued_requests_per_session`` more wait for a turn, beyond which
    ``submit`` raises ``RequestLimitReached`` (HTTP 429; -32050 over stdio); ``max_stateless_requests``
    2026-07-28 requests run at once server-wide (likewise).

    State handles (``ctx.open_handle``) last ``handle_ttl`` seconds at most; a handle's actor stops
    after ``handle_idle_timeout`` seconds unused (its values stay in the store, the next use restarts
    it); ``max_handles`` bounds the live ones. ``protocol`` serves one era only: ``"2025-11-25"``
    (sessions) or ``"2026-07-28"`` (stateless); None or ``"all"`` serves both.

    Background tasks (docs/tasks.md): a task lives ``task_ttl`` seconds unless its client asks for
    another ttl (at most ``max_task_ttl``; None: unlimited), clients are told to poll every
    ``task_poll_interval`` seconds, at most ``max_running_tasks`` bodies run at once, and
    ``tasks/list`` answers ``task_list_page`` tasks a page. ``task_node``
    names this process's running-task markers: with several servers on one shared task backend,
    give each a stable name of its own, so one's start-up never fails the tasks another runs.
    ``node_id`` names this process in logs and on the cluster bus (default: random); with a Redis
    backend the server is one node of many (docs/cluster.md): events cross nodes through Redis, task
    markers are named after the node (unless ``task_node`` is given), a session runs on one node at a
    time (the others forward to it), and a node that stops renewing its leases for ``node_ttl``
    seconds is dead: its sessions are taken over and its unfinished tasks failed by a survivor.
    ``task_prelude_wait`` is how long a 2026-07-28 task tool's call waits for an inline
    ``InputRequired`` round before it answers ``CreateTaskResult`` (docs/tasks.md). ``task_clock``
    stamps task records; it must be the task backend's clock (tests pass ``trio.current_time`` to
    both, to drive TTLs with a ``MockClock``).
    """
    limits = ServerLimits(
        max_sessions=max_sessions,
        max_requests_per_session=max_requests_per_session,
        max_queued_requests_per_session=max_queued_requests_per_session,
        max_stateless_requests=max_stateless_requests,
    )
    store = session_store_from_url(session_state_store)
    tasks = task_backend_from_url(task_backend)
    registry = Registry()
    client = StateStoreClient(
        registry, timeout=state_store_timeout, outcome_wait=state_store_outcome_wait, store=store
    )
    events: collections.deque[Any] = collections.deque(maxlen=1000)

    def record_event(event: Any) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    handles = HandleTable(
        client,
        idle_timeout=handle_idle_timeout,
        ttl=handle_ttl,
        mailbox_size=mailbox_size,
        restart_intensity=session_restart_intensity,
        restart_period=session_restart_period,
        shutdown_grace=shutdown_grace,
        on_event=record_event,
    )
    if shared_state_store is None:
        shared_state_store = not isinstance(store, MemorySessionStore)
    handles.shared = shared_state_store
    task_client = TaskClient(registry, list_page=task_list_page, prelude_wait=task_prelude_wait)
    deps = SessionDeps(
        server,
        handle_request if handle_request is not None else dispatch_request,
        client,
        registry,
        session_idle_timeout,
        mailbox_size,
        resume=resume_sessions,
        max_running=limits.max_requests_per_session,
        handles=handles,
        tasks=task_client,
        # Without resuming, only the node that created a session serves it: nothing to share.
        shared=shared_state_store and resume_sessions,
    )
    #: 2026-07-28 ``subscriptions/listen`` streams: EventBus subscribers beside the sessions
    listeners = Listeners(lambda: registry.whereis(EVENT_BUS_NAME))
    requests = StatelessRunner(
        server,
        deps.handle_request,
        max_concurrent=max_stateless_requests,
        on_stop=functools.partial(listeners.end_all, min(1.0, shutdown_grace)),
        store=client,
        handles=handles,
    )
    requests.tasks = task_client
    sessions = SessionTable()
    stats = ServerStats()
    running = RunningServer(
        server,
        registry,
        client,
        limits,
        sessions,
        Publisher(registry, sessions, listeners, stats),
        handles,
        listeners,
        events,
        stats,
        deps=deps,
        requests=requests,
        record_event=record_event,
        session_restart_intensity=session_restart_intensity,
        session_restart_period=session_restart_period,
        shutdown_grace=shutdown_grace,
        busy_retry_after=busy_retry_after,
        resume_sessions=resume_sessions,
        protocol=protocol,
        auth=auth if auth is not None else getattr(server, "auth", None),
        **({"node_id": node_id} if node_id is not None else {}),
    )
    running.publisher.elsewhere = running._elsewhere
    if task_list_page < 1:
        raise ValueError(f"task_list_page must be at least 1, got {task_list_page}")
    clustered = deps.shared or cluster_target(tasks) is not None
    cluster = open_cluster_bus(running, store, tasks) if clustered else None
    if cluster is not None and cluster_target(tasks) is not None:
        task_client.remote_poll = min(task_poll_interval, 1.0)  # a task may end on another node
    if cluster is not None and task_node == "default":
        task_node = running.node_id  # one marker owner per node: survivors settle a dead node's tasks

    def dynamic_supervisor(child_id: str, name: str, max_children: int | None) -> ChildSpec:
        """The tree's three DynamicSupervisors (tasks, sessions, handles) differ only in these."""
        return ChildSpec(
            child_id,
            DynamicSupervisor(max_children=max_children, name=name, on_event=record_event),
            type=ChildType.SUPERVISOR,
            shutdown=INFINITY,
        )

    children = [
        actor_child_spec(
            "state_store", lambda: StateStoreServer(store), name=STATE_STORE_NAME, registry=registry
        ),
        actor_child_spec(
            "task_runtime",
            lambda: TaskRuntime(
                tasks,
                registry=registry,
                supervisor=lambda: running._child("task_supervisor"),
                deliver=running.deliver_to_owner,
                default_ttl=task_ttl,
                max_ttl=max_task_ttl,
                poll_interval=task_poll_interval,
                node=task_node,
                max_running=max_running_tasks,
                clock=task_clock,
            ),
            name=TASK_RUNTIME_NAME,
            registry=registry,
        ),
        dynamic_supervisor("task_supervisor", "tasks", max_running_tasks),
        actor_child_spec(
            "event_bus",
            lambda: EventBus(running.publisher.deliver, running.publisher.everyone, cluster_hooks(running)),
            name=EVENT_BUS_NAME,
            registry=registry,
        ),
        dynamic_supervisor("sessions", "sessions", max_sessions),
        dynamic_supervisor("handles", "handles", max_handles),
        ChildSpec("handle_reaper", running.handles.reaper, shutdown=BRUTAL_KILL),
        ChildSpec("idle_reaper", running._reaper, shutdown=BRUTAL_KILL),
        ChildSpec("requests", requests, shutdown=shutdown_grace),
        ChildSpec("janitor", Janitor(client, registry, expire_interval), shutdown=shutdown_grace),
    ]
    if cluster is not None:  # last: their restarts (a lost Redis connection) restart nothing else
        children.extend(cluster_children(running, cluster, store, tasks, node_ttl))
    removers: list[Callable[[], None]] = []
    on_list_changed = getattr(server, "on_list_changed", None)
    on_resource_updated = getattr(server, "on_resource_updated", None)
    try:
        if backend_check_timeout is not None:
            # Before the tree: no actor owns the backends yet, and a refusal is one line, not a tree
            # that starts and stops around it in the supervision log.
            name = _backend_name(session_state_store)
            await check_session_store(store, name=name, timeout=backend_check_timeout)
            name = _backend_name(task_backend)
            await check_task_backend(tasks, name=name, timeout=backend_check_timeout)
        async with open_supervisor(
            children, strategy=Strategy.REST_FOR_ONE, name="server", on_event=record_event
        ) as tree:
            running.attach_tree(tree)
            if on_list_changed is not None:
                removers.append(on_list_changed(running.publisher.list_changed))
            if on_resource_updated is not None:
                removers.append(on_resource_updated(running.publisher.resource_updated))
            try:
                yield running
            finally:
                for remove in removers:
                    remove()
    finally:
        running.attach_tree(None)
        with trio.CancelScope(shield=True):
            if running.ownership is not None:
                await running.ownership.aclose()
            if running.stream_log is not None:
                await running.stream_log.aclose()
            if isinstance(session_state_store, str):
                await store.aclose()
            if isinstance(task_backend, str):
                await tasks.aclose()


def _backend_name(backend: object) -> str:
    """How a backend is named in a start-up error: its URL, or the class of an object passed in."""
    return backend if isinstance(backend, str) else f"{type(backend).__qualname__} object"
