"""A RequestEnv for dispatch tests: `LocalEnv` that also records what handlers asked of it.

On top of LocalEnv: the client's requests (``client_requests``), the levels set (``level_set``) and the
number of stores (``store_calls``) are recorded; a client answer may be an exception to raise; an
unscripted client request is a KeyError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from mcpvisor.runtime.protocol import LoggingLevel
from mcpvisor.runtime.server import LocalEnv


@attrs.define
class FakeEnv(LocalEnv):
    session_id: str | None = "session-1"
    client_requests: list[tuple[str, dict[str, Any], float | None]] = attrs.Factory(list)
    level_set: list[LoggingLevel] = attrs.Factory(list)
    store_calls: int = 0

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        self.client_requests.append((method, dict(params), timeout))
        answer = self.client_answers[method]
        if isinstance(answer, BaseException):
            raise answer
        return await super().request_client(method, params, timeout)

    async def store_value(self, key: str, value: bytes) -> None:
        self._session()  # a stateless request's store is refused before it is counted
        assert isinstance(value, bytes)
        self.store_calls += 1
        await super().store_value(key, value)

    async def set_log_level(self, level: LoggingLevel) -> None:
        self.level_set.append(level)
        await super().set_log_level(level)


def stateless_env(**kwargs: Any) -> FakeEnv:
    """A 2026-07-28 request: no session."""
    return FakeEnv(session_id=None, protocol_version="2026-07-28", **kwargs)
