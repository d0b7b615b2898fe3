"""SessionActor: one handshake-era MCP session, and ``run_incarnation``, which runs one life of it.

The actor drives ``SessionLifecycle``, answers ``initialize`` itself and runs every other request as a
child task with its own cancel scope (so ``notifications/cancelled`` cancels exactly that request and a
crashing handler fails exactly that request). What must outlive an incarnation lives elsewhere: the
negotiated settings in the state store (reloaded by the next incarnation, which resumes in READY), and
the in-flight table in the ``SessionSlot`` (so a crash still answers every accepted request).

A handler raising ``CrashSession`` (or any bug in the actor itself) crashes the actor; the session's
keeper (``_session_keeper``) restarts it under the same id.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio
from mcpvisor.supervisors import NORMAL

from ..actors import ActorRef, Caller, Registry, current_actor, run_actor
from ..protocol import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    Dispatch,
    ErrorResponse,
    JsonRpcError,
    LifecycleState,
    Message,
    Notification,
    Reply,
    Request,
    RequestId,
    Response,
    SessionLifecycle,
    StartSession,
    error_for_exception,
    error_response,
    parse_cancelled,
    progress_token_of,
)
from ..server._env import NoSessionState, RequestEnv
from ..server._errors import CrashSession
from ..server._state_errors import StateStoreUnavailable
from ._event_bus import EVENT_BUS_NAME, Subscribe, Unsubscribe, resource_topic
from ._idle_reaper import IdleReaper
from ._request_env import (
    ClientWaiter,
    SessionRequestEnv,
    SetLogLevel,
    SubscribeUri,
    UnsubscribeUri,
)
from ._served_server import ServedServer
from ._session_label import session_label
from ._session_settings import IDLE_TIMEOUT_CAPABILITY, SETTINGS_KEY, SessionSettings, negotiate_idle_timeout
from ._session_slot import InFlight, SessionSlot
from ._shared_session import SessionEnded, change_settings, is_live, write_settings
from ._state_store_server import StateStoreClient
from ._task_runtime import forward_task_answer

logger = logging.getLogger("mcpvisor.runtime.tree")

HandleRequest = Callable[[Any, Request, RequestEnv], Awaitable[Any]]


@attrs.define(eq=False)
class SessionDeps:
    """What every session of one running server shares."""

    server: ServedServer
    handle_request: HandleRequest
    store: StateStoreClient
    registry: Registry
    idle_timeout: float
    mailbox_size: int
    reaper: IdleReaper | None = None
    #: The server takes up a session id it does not hold from the store (``resume_sessions``).
    resume: bool = True
    #: Requests of one session running at once (``max_requests_per_session``); the rest wait in turn.
    max_running: int = 128
    #: the server's live state handles (requests of a session may use and open them too)
    handles: Any = None
    #: The server's ``TaskClient`` (None: no TaskRuntime, e.g. a custom handle_request in tests)
    tasks: Any = None
    #: The state store is shared with other processes (SQLite, Redis): a session may be served by any
    #: of them, so this node never owns its stored record (``_shared_session``).
    shared: bool = False


@attrs.frozen
class SessionMessage:
    """A client message for the session; ``entry`` is the in-flight record of a request."""

    message: Message
    entry: InFlight | None = None


def error_for(request_id: RequestId, exc: BaseException) -> ErrorResponse:
    """-32603 with no details, except for errors whose message is meant for the client: a stateless
    request using state, and a state store that timed out or cannot say whether a write landed (the
    client must know whether to send the request again)."""
    if isinstance(exc, NoSessionState | StateStoreUnavailable):
        return error_response(request_id, INTERNAL_ERROR, str(exc))
    return error_for_exception(request_id, exc)


class SessionActor:
    """Behaviour: client messages arrive as ``SessionMessage`` casts; setting changes from its own request
    tasks (log level, subscriptions) as calls, so the actor alone writes its settings."""

    def __init__(self, slot: SessionSlot, deps: SessionDeps, nursery: trio.Nursery) -> None:
        self.slot = slot
        self.deps = deps
        self.nursery = nursery
        self.lifecycle = SessionLifecycle()
        self.settings: SessionSettings | None = None
        self.waiters: dict[RequestId, ClientWaiter] = {}
        self._next_client_id = 0
        self.ref: ActorRef | None = None
        # FIFO turns for request handlers; a waiting request is cancellable like a running one. How
        # many may wait is bounded before the mailbox, in ``RunningServer.submit``.
        self._turns = trio.Semaphore(deps.max_running)

    # ---- life ---------------------------------------------------------------------------------------

    async def init(self) -> None:
        self.ref = current_actor()
        sid = self.slot.session_id
        # A brand-new session has nothing stored yet: skip the round trip to the store.
        restored = self.slot.incarnations or self.slot.resumed
        data = await self.deps.store.get(sid, SETTINGS_KEY) if restored else None
        gone = not is_live(data) if data is not None else bool(restored) and self.deps.shared
        if gone:
            # Ended on another node (a tombstone) or expired in the store meanwhile: gone everywhere.
            self._ended_elsewhere()
            data = None
        if data is not None:
            # A restarted (or resumed) incarnation: carry on where the last one was, handshake done.
            self.settings = settings = SessionSettings.from_bytes(data)
            self.lifecycle.state = LifecycleState.READY
            self.lifecycle.protocol_version = settings.protocol_version
            self.slot.idle_timeout = settings.idle_timeout
            self.slot.initialized = True
            for uri in settings.subscriptions:
                await self._bus(Subscribe(resource_topic(uri), sid))
            logger.info("session %s resumed (%s)", session_label(sid), settings.protocol_version)
        self.slot.set_ref(self.ref)
        if self.slot.closing:  # closed (idle) while this incarnation was starting
            self.ref.request_stop(NORMAL)

    def _ended_elsewhere(self) -> None:
        """The stored session ended (another node's DELETE, or it expired): end this node's actor
        without touching the store (there is nothing of it left to drop)."""
        slot = self.slot
        if not slot.closing:
            slot.closing = True
            slot.close_reason = "it ended on another node or expired"
        slot.keep_values = True
        if self.ref is not None:
            self.ref.request_stop(NORMAL)

    # ---- messages -----------------------------------------------------------------------------------

    async def handle_cast(self, msg: SessionMessage) -> None:
        message = msg.message
        entry = msg.entry
        action = self.lifecycle.receive(message)
        if isinstance(action, Dispatch):
            if isinstance(message, Request):
                assert entry is not None
                if message.method == "ping":
                    self._finish(entry, Response(message.id, {}))
                else:
                    self.nursery.start_soon(self._run_request, message, entry)
            elif isinstance(message, Notification):
                self._notification(message)
            elif message.id is not None:
                waiter = self.waiters.pop(message.id, None)
                if waiter is not None:
                    waiter.resolve(message)
                elif self.deps.tasks is not None:
                    forward_task_answer(self.deps.registry, message)
        elif isinstance(action, StartSession):
            assert entry is not None
            await self._initialize(action, entry)
        elif isinstance(action, Reply):
            if entry is not None:
                self._finish(entry, action.error)
        elif entry is not None:  # Drop: never for a request, but never leave one unanswered
            self._finish(entry, error_response(entry.request_id, INVALID_REQUEST, "Ignored"))

    async def handle_call(self, msg: object, _caller: Caller) -> SessionEnded | None:
        settings = self.settings
        if settings is None:
            raise RuntimeError(f"{msg!r} before initialize")
        sid = self.slot.session_id
        if isinstance(msg, SetLogLevel):
            self.settings = attrs.evolve(settings, log_level=msg.level)
        elif isinstance(msg, SubscribeUri):
            if msg.uri not in settings.subscriptions:
                self.settings = attrs.evolve(settings, subscriptions=(*settings.subscriptions, msg.uri))
            await self._bus(Subscribe(resource_topic(msg.uri), sid))
        elif isinstance(msg, UnsubscribeUri):
            subs = tuple(u for u in settings.subscriptions if u != msg.uri)
            self.settings = attrs.evolve(settings, subscriptions=subs)
            await self._bus(Unsubscribe(resource_topic(msg.uri), sid))
        else:
            raise TypeError(f"SessionActor got an unknown call {msg!r}")
        try:
            if isinstance(msg, SubscribeUri):
                await self._persist(subscribe=msg.uri)
            elif isinstance(msg, UnsubscribeUri):
                await self._persist(unsubscribe=msg.uri)
            else:
                await self._persist()
        except SessionEnded as ended:
            self._ended_elsewhere()
            return ended  # the request that asked fails; the actor stops normally
        return None

    async def call_self(self, msg: object) -> None:
        """From a request task: ask the actor to change a setting (it persists it)."""
        assert self.ref is not None
        ended = await self.ref.call(msg, timeout=None)
        if ended is not None:
            raise JsonRpcError(
                INTERNAL_ERROR,
                "session ended (deleted through another server node, or expired): initialize a new one",
            )

    def new_client_request(self) -> tuple[RequestId, ClientWaiter]:
        self._next_client_id += 1
        request_id = f"mcpvisor-{self.slot.incarnations}-{self._next_client_id}"
        waiter = self.waiters[request_id] = ClientWaiter()
        return request_id, waiter

    async def _bus(self, msg: object) -> None:
        if isinstance(msg, Subscribe):
            self.slot.subscribed = True  # before the call: a subscription half made is undone at the end
        bus = self.deps.registry.whereis(EVENT_BUS_NAME)
        if bus is not None:
            await bus.call(msg)

    async def _persist(
        self, *, first: bool = False, subscribe: str | None = None, unsubscribe: str | None = None
    ) -> None:
        """Store the settings: whole at ``initialize`` (or on a store of this process only), else as
        one change to the stored record (``_shared_session.change_settings``)."""
        settings = self.settings
        assert settings is not None
        if not self.deps.shared:
            # The actor's own write, never a request's: no yield after it (the actor parks or takes its
            # next message right after, and yields every _BATCH messages).
            await self.deps.store.put(
                self.slot.session_id, SETTINGS_KEY, settings.to_bytes(), yield_after=False
            )
            return
        if first:
            await write_settings(self.deps.store, self.slot, settings.to_bytes())
        elif subscribe is not None or unsubscribe is not None:
            await change_settings(self.deps.store, self.slot, subscribe=subscribe, unsubscribe=unsubscribe)
        else:
            await change_settings(self.deps.store, self.slot, fields={"log_level": settings.log_level})
        self.slot.record_written = trio.current_time()

    async def _initialize(self, start: StartSession, entry: InFlight) -> None:
        request = start.request
        params: Mapping[str, Any] = request.params if request.params is not None else {}
        capabilities = params.get("capabilities")
        capabilities = dict(capabilities) if isinstance(capabilities, Mapping) else {}
        info = params.get("clientInfo")
        idle = negotiate_idle_timeout(self.deps.idle_timeout, capabilities)
        self.settings = SessionSettings(
            start.protocol_version,
            capabilities,
            dict(info) if isinstance(info, Mapping) else None,
            idle,
            owner=self.slot.owner,
        )
        self.slot.idle_timeout = idle  # before the write: a shared store's record lives as long
        await self._persist(first=True)
        self.slot.initialized = True
        if self.deps.reaper is not None:
            self.deps.reaper.schedule(self.slot)
        result = dict(self.deps.server.initialize_result(start.protocol_version))
        server_caps = dict(result.get("capabilities") or {})
        server_caps["experimental"] = {
            **(server_caps.get("experimental") or {}),
            IDLE_TIMEOUT_CAPABILITY: {"seconds": idle},
        }
        result["capabilities"] = server_caps
        if logger.isEnabledFor(logging.INFO):
            logger.info("session %s initialized (%s)", self.slot.label, start.protocol_version)
        self._finish(entry, Response(request.id, result))

    def _notification(self, note: Notification) -> None:
        if note.method == "notifications/cancelled":
            params = parse_cancelled(note.params)
            if params is None or params.request_id is None:
                return
            entry = self.slot.in_flight.get(params.request_id)
            if entry is not None:
                entry.scope.cancel()

    # ---- requests -----------------------------------------------------------------------------------

    def _finish(self, entry: InFlight, message: Message) -> None:
        """Send a final reply from the actor itself, never blocking it on a slow transport."""
        try:
            entry.replies.send_nowait(message)
        except trio.WouldBlock:
            self.nursery.start_soon(self._send_final, entry, message)
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._forget(entry)

    def _forget(self, entry: InFlight) -> None:
        slot = self.slot
        if slot.in_flight.get(entry.request_id) is entry:
            del slot.in_flight[entry.request_id]
        entry.replies.close()
        slot.touch()

    async def _send_final(self, entry: InFlight, message: Message) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            try:  # room in the channel (the usual case): no trip through the scheduler
                entry.replies.send_nowait(message)
            except trio.WouldBlock:
                await entry.replies.send(message)
        self._forget(entry)

    async def _run_request(self, request: Request, entry: InFlight) -> None:
        final: Message | None = None
        with entry.scope:
            try:
                env = SessionRequestEnv(
                    self, request, entry.replies, progress_token_of(request), caller=entry.caller
                )
                try:  # a free turn (the usual case) is taken without a trip through the scheduler
                    self._turns.acquire_nowait()
                except trio.WouldBlock:
                    await self._turns.acquire()
                try:
                    result = await self.deps.handle_request(self.deps.server, request, env)
                finally:
                    self._turns.release()
                final = Response(request.id, result)
            except CrashSession as exc:
                logger.warning(
                    "session %s: request %r crashed the session: %r",
                    session_label(self.slot.session_id),
                    request.id,
                    exc,
                )
                assert self.ref is not None
                self.ref.request_stop(exc)
                return  # the entry stays in flight: the dying incarnation answers it -32603
            except Exception as exc:
                if not isinstance(exc, NoSessionState | JsonRpcError):
                    logger.exception(
                        "session %s: %s (id %r) failed",
                        session_label(self.slot.session_id),
                        request.method,
                        request.id,
                    )
                final = error_for(request.id, exc)
        if final is None:  # cancelled by the client: no response, per the spec
            self._forget(entry)
            return
        await self._send_final(entry, final)


# ---- running one incarnation ------------------------------------------------------------------------


async def run_incarnation(
    slot: SessionSlot, deps: SessionDeps, *, task_status: trio.TaskStatus[ActorRef] = trio.TASK_STATUS_IGNORED
) -> None:
    """One incarnation: the actor plus the nursery its requests run in; then answer what it left."""
    crashed: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            actor = SessionActor(slot, deps, nursery)
            await run_actor(
                actor,
                mailbox_size=deps.mailbox_size,
                name=f"session {slot.label}",
                task_status=task_status,
            )
            if nursery.child_tasks:  # requests still running (none: nothing to cancel, skip trio's cancel)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        _, rest = group.split(trio.Cancelled)
        if rest is None:
            raise  # cancelled from outside (brutal kill, shutdown): not a crash
        crashed = rest.exceptions[0] if len(rest.exceptions) == 1 else rest
    except Exception as exc:
        crashed = exc
    finally:
        slot.set_ref(None)
        # After a crash the keeper answers what is left, once it knows whether it restarts the session.
        if slot.in_flight and crashed is None:
            slot.fail_in_flight(
                f"session closed ({slot.close_reason})" if slot.closing else "server is shutting down"
            )
    if crashed is not None:
        raise crashed
