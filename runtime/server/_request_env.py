"""The two ``RequestEnv`` implementations: a request of a session, and a stateless request.

Both send related messages on the request's own ``replies`` channel (so they travel on the request's
stream, as Streamable HTTP requires), and every state operation is a call to the StateStoreServer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
from ._env import NoSessionState
from ._session_settings import check_user_key
from ._state_store_server import StateStoreClient

if TYPE_CHECKING:
    from ._session_actor import SessionActor


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


class SessionRequestEnv:
    """A handshake-era request running in its SessionActor."""

    def __init__(
        self,
        actor: SessionActor,
        request: Request,
        replies: trio.MemorySendChannel[Message],
        progress_token: str | int | None,
    ) -> None:
        settings = actor.settings
        assert settings is not None
        self._actor = actor
        self._replies = replies
        self._store: StateStoreClient = actor.deps.store
        self.session_id: str | None = actor.slot.session_id
        self._sid: str = actor.slot.session_id
        self.request_id: RequestId = request.id
        self.protocol_version: str = settings.protocol_version
        self.client_capabilities: Mapping[str, Any] = settings.client_capabilities
        self.client_info: Mapping[str, Any] | None = settings.client_info
        self.progress_token: str | int | None = progress_token

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

    async def load_value(self, key: str) -> bytes | None:
        check_user_key(key)
        return await self._store.get(self._sid, key)

    async def store_value(self, key: str, value: bytes) -> None:
        check_user_key(key)
        await self._store.put(self._sid, key, value)

    async def delete_value(self, key: str) -> None:
        check_user_key(key)
        await self._store.delete(self._sid, key)

    async def set_log_level(self, level: LoggingLevel) -> None:
        await self._actor.call_self(SetLogLevel(level))

    async def subscribe(self, uri: str) -> None:
        await self._actor.call_self(SubscribeUri(uri))

    async def unsubscribe(self, uri: str) -> None:
        await self._actor.call_self(UnsubscribeUri(uri))


class StatelessRequestEnv:
    """A 2026-07-28 request: no session, so no state; everything else as a session request."""

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
    ) -> None:
        self._replies = replies
        self.request_id: RequestId = request.id
        self.protocol_version: str = protocol_version
        self.client_capabilities: Mapping[str, Any] = client_capabilities
        self.client_info: Mapping[str, Any] | None = client_info
        self.progress_token: str | int | None = progress_token
        self.log_level: LoggingLevel | None = log_level

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

    async def load_value(self, key: str) -> bytes | None:
        raise NoSessionState()

    async def store_value(self, key: str, value: bytes) -> None:
        raise NoSessionState()

    async def delete_value(self, key: str) -> None:
        raise NoSessionState()

    async def set_log_level(self, level: LoggingLevel) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "logging/setLevel does not exist in 2026-07-28")

    async def subscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/subscribe does not exist in 2026-07-28")

    async def unsubscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/unsubscribe does not exist in 2026-07-28")
