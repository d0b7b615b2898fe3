"""The two ``RequestEnv`` implementations: a request of a session, and a stateless request.

Both send related messages on the request's own ``replies`` channel (so they travel on the request's
stream, as Streamable HTTP requires), and every state operation is a call to the StateStoreServer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
import trio

from ..protocol import (
    INTERNAL_ERROR,
    ErrorResponse,
    JsonRpcError,
    LoggingLevel,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
    check_sendable,
    is_level_enabled,
)
from ..server._caller import Requester, owner_key
from ..server._env import NoSessionState
from ..server._state_handle import StateHandle
from ._handle_table import HandleTable
from ._session_settings import SessionSettings, check_user_key
from ._session_slot import SessionSlot
from ._state_store_server import StateStoreClient


@attrs.frozen
class SetLogLevel:
    level: LoggingLevel


@attrs.frozen
class SubscribeUri:
    uri: str


@attrs.frozen
class UnsubscribeUri:
    uri: str


def _log_allowed(notification: Notification, threshold: LoggingLevel | None) -> bool:
    if notification.method != "notifications/message":
        return True
    level = notification.params.get("level") if notification.params is not None else None
    return isinstance(level, str) and is_level_enabled(level, threshold)  # type: ignore[arg-type]


async def _send_related(replies: trio.MemorySendChannel[Message], notification: Notification) -> None:
    """A notification nobody can receive any more (the transport let go of the stream) is dropped:
    the request itself carries on, as Streamable HTTP lets a request outlive its connection.

    One JSON cannot carry (a NaN progress, a log's `data` that is no JSON value) raises ValueError
    here, in the handler that sent it, instead of reaching the transport's encoder."""
    check_sendable(notification)
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await replies.send(notification)


@attrs.define(eq=False)
class ClientWaiter:
    """A server-to-client request waiting for the client's answer (routed back by the session)."""

    event: trio.Event = attrs.field(factory=trio.Event)
    answer: Response | ErrorResponse | None = None

    def resolve(self, answer: Response | ErrorResponse) -> None:
        self.answer = answer
        self.event.set()


async def wait_client_answer(waiter: ClientWaiter, timeout: float | None) -> Any:
    if timeout is None:
        await waiter.event.wait()
    else:
        with trio.fail_after(timeout):
            await waiter.event.wait()
    answer = waiter.answer
    if isinstance(answer, ErrorResponse):
        raise JsonRpcError(answer.error.code, answer.error.message, answer.error.data)
    assert answer is not None
    return answer.result


def owner_of(client_info: Mapping[str, Any] | None, principal: Any = None) -> str | None:
    """Who a request comes from, as far as it says: the authenticated principal when there is one
    (``Principal``, or its key), else the client's name (its version may change between calls: an
    upgraded client keeps its handles). The one rule for state handles and stateless tasks."""
    key = principal if isinstance(principal, str) else owner_key(principal)
    if key is not None:
        return f"principal:{key}"
    name = client_info.get("name") if client_info is not None else None
    return f"client:{name}" if isinstance(name, str) and name else None


def _caller_parts(caller: Requester | None) -> tuple[Any, Mapping[str, str]]:
    if caller is None:
        return None, Requester().headers
    return caller.principal, caller.headers


class _StateBinding:
    """What both request kinds share: the state owner (session or handle) and the handle operations.

    Every state operation is a call to the StateStoreServer under ``state_owner``: a session id or a
    handle id, the same store either way, so whatever a Context does with state works on both.
    """

    _store: StateStoreClient | None
    _handles: HandleTable | None
    _session_owner: str | None
    state_owner: str | None
    handle: StateHandle | None
    client_info: Mapping[str, Any] | None
    #: The authenticated ``Principal`` (None without authentication) and the request's headers.
    principal: Any
    headers: Mapping[str, str]

    def _owner(self) -> str | None:
        return owner_of(self.client_info, self.principal)

    def _table(self) -> HandleTable:
        if self._handles is None:
            raise RuntimeError("state handles need the mcpvisor server runtime (start_server / server.run())")
        return self._handles

    def _owner_id(self) -> str:
        owner = self.state_owner
        if owner is None:
            raise NoSessionState()
        return owner

    def _client(self) -> StateStoreClient:
        assert self._store is not None
        return self._store

    async def load_value(self, key: str) -> bytes | None:
        check_user_key(key)
        return await self._client().get(self._owner_id(), key)

    def _ttl(self, owner: str) -> float | None:
        """A handle's values last as long as the handle (a session's: the store's default TTL)."""
        return self._handles.remaining(owner) if owner == self.handle and self._handles is not None else None

    async def store_value(self, key: str, value: bytes) -> None:
        check_user_key(key)
        owner = self._owner_id()
        await self._client().put(owner, key, value, ttl=self._ttl(owner))
        await self._written(owner)

    async def update_value(self, key: str, fn: Callable[[Any], Any], default: Any) -> Any:
        check_user_key(key)
        owner = self._owner_id()
        new = await self._client().update(owner, key, fn, default, ttl=self._ttl(owner))
        await self._written(owner)
        return new

    async def _written(self, owner: str) -> None:
        """A write through a handle that ended meanwhile is refused and undone (``after_write``)."""
        if owner == self.handle and self._handles is not None:
            await self._handles.after_write(owner)

    async def delete_value(self, key: str) -> None:
        check_user_key(key)
        await self._client().delete(self._owner_id(), key)

    async def use_handle(self, handle: StateHandle) -> None:
        await self._table().use(handle, self._owner())
        self.handle = handle
        self.state_owner = handle

    async def open_handle(
        self, *, ttl: float | None = None, idle_timeout: float | None = None
    ) -> StateHandle:
        handle = await self._table().open(self._owner(), ttl=ttl, idle_timeout=idle_timeout)
        if self.handle is None:
            self.handle = handle
            self.state_owner = handle
        return handle

    async def close_handle(self, handle: StateHandle) -> None:
        await self._table().close(handle, self._owner())
        if handle == self.handle:
            self.handle = None
            self.state_owner = self._session_owner

    def crash_handle(self, reason: BaseException) -> bool:
        """Crash the actor of the request's handle (``CrashSession`` on a request without a session)."""
        if self.handle is None or self._handles is None:
            return False
        return self._handles.crash(self.handle, reason)


class _HostDeps(Protocol):
    @property
    def store(self) -> StateStoreClient: ...
    @property
    def handles(self) -> HandleTable | None: ...
    @property
    def tasks(self) -> Any: ...


class SessionHost(Protocol):
    """What a session request's env needs of its SessionActor: the seam that lets this module not
    import the actor (which imports this module to build its requests' envs)."""

    @property
    def slot(self) -> SessionSlot: ...
    @property
    def deps(self) -> _HostDeps: ...
    @property
    def settings(self) -> SessionSettings | None: ...
    @property
    def waiters(self) -> dict[RequestId, ClientWaiter]: ...
    def new_client_request(self) -> tuple[RequestId, ClientWaiter]: ...
    async def call_self(self, msg: object) -> None: ...


class SessionRequestEnv(_StateBinding):
    """A handshake-era request running in its SessionActor."""

    def __init__(
        self,
        actor: SessionHost,
        request: Request,
        replies: trio.MemorySendChannel[Message],
        progress_token: str | int | None,
        *,
        caller: Requester | None = None,
    ) -> None:
        settings = actor.settings
        self.principal, self.headers = _caller_parts(caller)
        assert settings is not None
        self._actor = actor
        self._replies = replies
        self._store = actor.deps.store
        self._handles = actor.deps.handles
        self.session_id: str | None = actor.slot.session_id
        self._session_owner = self.state_owner = actor.slot.session_id
        self.handle = None
        self.request_id: RequestId = request.id
        self.protocol_version: str = settings.protocol_version
        self.client_capabilities: Mapping[str, Any] = settings.client_capabilities
        self.client_info: Mapping[str, Any] | None = settings.client_info
        self.progress_token: str | int | None = progress_token
        #: The server's ``TaskClient`` (tasks utility), None when the runtime has no TaskRuntime.
        self.tasks: Any = actor.deps.tasks

    @property
    def log_level(self) -> LoggingLevel | None:
        settings = self._actor.settings
        return None if settings is None else settings.log_level

    @log_level.setter
    def log_level(self, value: LoggingLevel | None) -> None:
        raise AttributeError("use set_log_level(): the level belongs to the session")

    async def send_related(self, notification: Notification) -> None:
        if _log_allowed(notification, self.log_level):
            await _send_related(self._replies, notification)

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        request_id, waiter = self._actor.new_client_request()
        try:
            request = Request(request_id, method, dict(params))
            check_sendable(request)  # else the handler would wait for the answer to a request never sent
            await self._replies.send(request)
            return await wait_client_answer(waiter, timeout)
        finally:
            self._actor.waiters.pop(request_id, None)

    async def send_client_request(self, request: Request) -> None:
        """Put a server-to-client request made elsewhere (a task body's, routed by the TaskRuntime) on
        this request's stream; its answer reaches the session, which forwards it to the TaskRuntime."""
        await self._replies.send(request)

    async def set_log_level(self, level: LoggingLevel) -> None:
        await self._actor.call_self(SetLogLevel(level))

    async def subscribe(self, uri: str) -> None:
        await self._actor.call_self(SubscribeUri(uri))

    async def unsubscribe(self, uri: str) -> None:
        await self._actor.call_self(UnsubscribeUri(uri))


class StatelessRequestEnv(_StateBinding):
    """A 2026-07-28 request: no session, so state only through a handle; otherwise as a session request."""

    session_id: str | None = None

    def __init__(
        self,
        request: Request,
        replies: trio.MemorySendChannel[Message],
        *,
        protocol_version: str,
        client_capabilities: Mapping[str, Any],
        client_info: Mapping[str, Any] | None,
        progress_token: str | int | None,
        log_level: LoggingLevel | None,
        store: StateStoreClient | None = None,
        handles: HandleTable | None = None,
        tasks: Any = None,
        caller: Requester | None = None,
    ) -> None:
        self.principal, self.headers = _caller_parts(caller)
        self._replies = replies
        self._store = store
        self._handles = handles
        self._session_owner = self.state_owner = None
        self.handle = None
        self.request_id: RequestId = request.id
        self.protocol_version: str = protocol_version
        self.client_capabilities: Mapping[str, Any] = client_capabilities
        self.client_info: Mapping[str, Any] | None = client_info
        self.progress_token: str | int | None = progress_token
        self.log_level: LoggingLevel | None = log_level
        #: The server's ``TaskClient`` (tasks extension), None when the runtime has no TaskRuntime.
        self.tasks: Any = tasks

    async def send_related(self, notification: Notification) -> None:
        if _log_allowed(notification, self.log_level):
            await _send_related(self._replies, notification)

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        raise JsonRpcError(
            INTERNAL_ERROR,
            f"{method} needs a session: server-to-client requests are not available to stateless "
            "(2026-07-28) requests in this runtime",
        )

    async def set_log_level(self, level: LoggingLevel) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "logging/setLevel does not exist in 2026-07-28")

    async def subscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/subscribe does not exist in 2026-07-28")

    async def unsubscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/unsubscribe does not exist in 2026-07-28")
