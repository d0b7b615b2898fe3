"""`TaskEnv`: the `RequestEnv` a task body runs in, so a body gets the same `Context` as a tool.

The request that created the task has long been answered (with a ``CreateTaskResult``) when the body
runs, so nothing here touches that request's stream: notifications and requests to the client travel
through the TaskRuntime, which tags them with the related-task ``_meta`` and delivers them to whoever
watches the task. Session values go to the StateStoreServer under the creating session's id, exactly as
for the tool run inline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol import INTERNAL_ERROR, JsonRpcError, LoggingLevel, Notification, RequestId
from ._env import NoSessionState, RequestEnv
from ._session_settings import check_user_key
from ._state_store_server import StateStoreClient
from ._task_runtime import TaskControl


class TaskEnv:
    """A snapshot of the creating request's env (identity, capabilities, progress token, log level)
    plus a ``TaskControl`` for everything that leaves the body."""

    def __init__(
        self, origin: RequestEnv, control: TaskControl, store: StateStoreClient | None = None
    ) -> None:
        self.session_id: str | None = origin.session_id
        self.request_id: RequestId = origin.request_id
        self.protocol_version: str = origin.protocol_version
        self.client_capabilities: Mapping[str, Any] = origin.client_capabilities
        self.client_info: Mapping[str, Any] | None = origin.client_info
        self.progress_token: str | int | None = origin.progress_token
        self.log_level: LoggingLevel | None = origin.log_level
        self.task_id = control.task_id
        #: ``ctx.elicit`` & co. wait for the answer (2026-07-28: it comes with ``tasks/update``) instead
        #: of ending an MRTR round: the task, not the request, waits.
        self.blocking_input = True
        self._control = control
        self._store = store

    async def send_related(self, notification: Notification) -> None:
        await self._control.notify(notification)

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        return await self._control.ask(method, dict(params), timeout)

    def _sid(self) -> tuple[StateStoreClient, str]:
        if self.session_id is None or self._store is None:
            raise NoSessionState()
        return self._store, self.session_id

    async def load_value(self, key: str) -> bytes | None:
        check_user_key(key)
        store, sid = self._sid()
        return await store.get(sid, key)

    async def store_value(self, key: str, value: bytes) -> None:
        check_user_key(key)
        store, sid = self._sid()
        await store.put(sid, key, value)

    async def delete_value(self, key: str) -> None:
        check_user_key(key)
        store, sid = self._sid()
        await store.delete(sid, key)

    async def set_log_level(self, level: LoggingLevel) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "logging/setLevel is a session request, not part of a task")

    async def subscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/subscribe is a session request, not part of a task")

    async def unsubscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/unsubscribe is a session request, not part of a task")
