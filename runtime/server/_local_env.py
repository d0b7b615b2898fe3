"""`LocalEnv`: a `RequestEnv` with no runtime behind it, for unit-testing handlers without a transport.

Session values live in a dict (as codec bytes, exactly what the real state store receives, so an
unserializable value fails here as it would in production); notifications are collected in ``sent``;
requests to the client are answered from ``client_answers``. Share one ``store`` between LocalEnvs to
model several requests of one session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ...backends._codec import decode, encode
from ..protocol import LoggingLevel, Notification, RequestId
from ._env import NoSessionState


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
        if self.session_id is None:
            raise NoSessionState()

    async def load_value(self, key: str) -> bytes | None:
        self._session()
        return self.store.get(key)

    async def store_value(self, key: str, value: bytes) -> None:
        self._session()
        self.store[key] = value

    async def update_value(self, key: str, fn: Callable[[Any], Any], default: Any) -> Any:
        """As the StateStoreServer does it: read, ``fn``, encode, write, with no await in between."""
        self._session()
        data = self.store.get(key)
        new = fn(default if data is None else decode(data))
        self.store[key] = encode(new, key=key)
        return new

    async def delete_value(self, key: str) -> None:
        self._session()
        self.store.pop(key, None)

    async def set_log_level(self, level: LoggingLevel) -> None:
        self.log_level = level

    async def subscribe(self, uri: str) -> None:
        self.subscriptions.add(uri)

    async def unsubscribe(self, uri: str) -> None:
        self.subscriptions.discard(uri)


def _call(answer: Callable[[Mapping[str, Any]], Any], params: Mapping[str, Any]) -> Any:
    return answer(params)
