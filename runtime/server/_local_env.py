"""`LocalEnv`: a `RequestEnv` with no runtime behind it, for unit-testing handlers without a transport.

Session values live in a dict (as codec bytes, exactly what the real state store receives, so an
unserializable value fails here as it would in production); notifications are collected in ``sent``;
requests to the client are answered from ``client_answers``. Share one ``store`` between LocalEnvs to
model several requests of one session. State handles work too: ``open_handle`` mints one whose values
live in ``handle_stores`` (share that dict to model several requests using one handle); there is no
owner, lifetime or actor behind them here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ...backends._codec import decode, encode
from ..protocol import LoggingLevel, Notification, RequestId
from ._env import NoSessionState
from ._state_handle import StateHandle, unknown_handle


@attrs.define
class LocalEnv:
    """One request's environment, in memory. ``session_id=None`` models a stateless request."""

    session_id: str | None = "local-session"
    request_id: RequestId = 1
    protocol_version: str = "2025-11-25"
    client_capabilities: Mapping[str, Any] = attrs.Factory(dict)
    client_info: Mapping[str, Any] | None = None
    progress_token: str | int | None = None
    log_level: LoggingLevel | None = None
    store: dict[str, bytes] = attrs.Factory(dict)
    sent: list[Notification] = attrs.Factory(list)
    #: method -> result, or a function of the params returning it (raise JsonRpcError to refuse).
    client_answers: dict[str, Any] = attrs.Factory(dict)
    subscriptions: set[str] = attrs.Factory(set)
    #: The state handle this request acts on (set it, or let ``use_handle`` / ``open_handle`` do it).
    handle: StateHandle | None = None
    #: handle -> its values, as codec bytes.
    handle_stores: dict[str, dict[str, bytes]] = attrs.Factory(dict)
    #: ``ctx.principal`` (an ``mcpvisor.runtime.auth.Principal``) and ``ctx.headers`` for the handler.
    principal: Any = None
    headers: Mapping[str, str] = attrs.Factory(dict)

    @property
    def state_owner(self) -> str | None:
        return self.handle if self.handle is not None else self.session_id

    def _values(self) -> dict[str, bytes]:
        if self.handle is not None:
            return self.handle_stores.setdefault(self.handle, {})
        self._session()
        return self.store

    async def send_related(self, notification: Notification) -> None:
        self.sent.append(notification)

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        if method not in self.client_answers:
            raise LookupError(f"LocalEnv has no answer for {method!r}: set client_answers[{method!r}]")
        answer = self.client_answers[method]
        if callable(answer):
            return _call(answer, params)
        return answer

    def _session(self) -> None:
        if self.state_owner is None:
            raise NoSessionState()

    async def load_value(self, key: str) -> bytes | None:
        return self._values().get(key)

    async def store_value(self, key: str, value: bytes) -> None:
        self._values()[key] = value

    async def update_value(self, key: str, fn: Callable[[Any], Any], default: Any) -> Any:
        """As the StateStoreServer does it: read, ``fn``, encode, write, with no await in between."""
        values = self._values()
        data = values.get(key)
        new = fn(default if data is None else decode(data))
        values[key] = encode(new, key=key)
        return new

    async def delete_value(self, key: str) -> None:
        self._values().pop(key, None)

    async def use_handle(self, handle: StateHandle) -> None:
        if handle not in self.handle_stores:
            raise unknown_handle(handle)
        self.handle = handle

    async def open_handle(
        self, *, ttl: float | None = None, idle_timeout: float | None = None
    ) -> StateHandle:
        handle = StateHandle.mint()
        self.handle_stores[handle] = {}
        if self.handle is None:
            self.handle = handle
        return handle

    async def close_handle(self, handle: StateHandle) -> None:
        if self.handle_stores.pop(handle, None) is None:
            raise unknown_handle(handle)
        if handle == self.handle:
            self.handle = None

    async def set_log_level(self, level: LoggingLevel) -> None:
        self.log_level = level

    async def subscribe(self, uri: str) -> None:
        self.subscriptions.add(uri)

    async def unsubscribe(self, uri: str) -> None:
        self.subscriptions.discard(uri)


def _call(answer: Callable[[Mapping[str, Any]], Any], params: Mapping[str, Any]) -> Any:
    return answer(params)
