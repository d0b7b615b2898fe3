"""A RequestEnv for dispatch tests: a dict state store, recorded notifications, scripted client answers.

Written against the `RequestEnv` protocol only, so the dispatch tests never depend on the session runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from mcpvisor.runtime.protocol import LoggingLevel, Notification, RequestId
from mcpvisor.runtime.server import NoSessionState


@attrs.define
class FakeEnv:
    session_id: str | None = "session-1"
    request_id: RequestId = 1
    protocol_version: str = "2025-11-25"
    client_capabilities: Mapping[str, Any] = attrs.Factory(dict)
    client_info: Mapping[str, Any] | None = None
    progress_token: str | int | None = None
    log_level: LoggingLevel | None = None
    #: The session's values (codec bytes), shared between FakeEnvs to model one session's requests.
    store: dict[str, bytes] = attrs.Factory(dict)
    sent: list[Notification] = attrs.Factory(list)
    #: method -> answer (or a callable taking the params); what the "client" replies.
    client_answers: dict[str, Any] = attrs.Factory(dict)
    client_requests: list[tuple[str, dict[str, Any], float | None]] = attrs.Factory(list)
    subscriptions: set[str] = attrs.Factory(set)
    level_set: list[LoggingLevel] = attrs.Factory(list)
    store_calls: int = 0

    async def send_related(self, notification: Notification) -> None:
        self.sent.append(notification)

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        self.client_requests.append((method, dict(params), timeout))
        answer = self.client_answers[method]
        if isinstance(answer, BaseException):
            raise answer
        return answer(params) if isinstance(answer, Callable) else answer  # type: ignore[arg-type]

    def _need_session(self) -> None:
        if self.session_id is None:
            raise NoSessionState()

    async def load_value(self, key: str) -> bytes | None:
        self._need_session()
        return self.store.get(key)

    async def store_value(self, key: str, value: bytes) -> None:
        self._need_session()
        assert isinstance(value, bytes)
        self.store_calls += 1
        self.store[key] = value

    async def delete_value(self, key: str) -> None:
        self._need_session()
        self.store.pop(key, None)

    async def set_log_level(self, level: LoggingLevel) -> None:
        self.level_set.append(level)
        self.log_level = level

    async def subscribe(self, uri: str) -> None:
        self.subscriptions.add(uri)

    async def unsubscribe(self, uri: str) -> None:
        self.subscriptions.discard(uri)


def stateless_env(**kwargs: Any) -> FakeEnv:
    """A 2026-07-28 request: no session."""
    return FakeEnv(session_id=None, protocol_version="2026-07-28", **kwargs)
