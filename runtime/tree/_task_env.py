"""`TaskEnv`: the `RequestEnv` a task body runs in, so a body gets the same `Context` as a tool.

The request that created the task has long been answered (with a ``CreateTaskResult``) when the body
runs, so nothing here touches that request's stream: notifications and requests to the client travel
through the TaskRuntime, which tags them with the related-task ``_meta`` and delivers them to whoever
watches the task. State (values and handles) is the creating request's: its env still acts on the
StateStoreServer under its state owner (session or state handle), exactly as for the tool run inline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..protocol import INTERNAL_ERROR, JsonRpcError, LoggingLevel, Notification, RequestId
from ..server._env import RequestEnv
from ..server._state_handle import StateHandle
from ._task_runtime import TaskControl


class TaskEnv:
    """A snapshot of the creating request's env (identity, capabilities, progress token, log level)
    plus a ``TaskControl`` for everything that leaves the body."""

    def __init__(self, origin: RequestEnv, control: TaskControl) -> None:
        self.session_id: str | None = origin.session_id
        self.request_id: RequestId = origin.request_id
        self.protocol_version: str = origin.protocol_version
        self.client_capabilities: Mapping[str, Any] = origin.client_capabilities
        self.client_info: Mapping[str, Any] | None = origin.client_info
        self.progress_token: str | int | None = origin.progress_token
        self.log_level: LoggingLevel | None = origin.log_level
        #: The creating request's principal and headers: a task acts for whoever started it.
        self.principal: Any = getattr(origin, "principal", None)
        self.headers: Mapping[str, str] = getattr(origin, "headers", {})
        self.task_id = control.task_id
        #: ``ctx.elicit`` & co. wait for the answer (2026-07-28: it comes with ``tasks/update``) instead
        #: of ending an MRTR round: the task, not the request, waits.
        self.blocking_input = True
        self._control = control
        self._origin = origin

    @property
    def state_owner(self) -> str | None:
        return self._origin.state_owner

    @state_owner.setter
    def state_owner(self, owner: str | None) -> None:
        self._origin.state_owner = owner

    @property
    def handle(self) -> StateHandle | None:
        return self._origin.handle

    @handle.setter
    def handle(self, handle: StateHandle | None) -> None:
        self._origin.handle = handle

    async def send_related(self, notification: Notification) -> None:
        await self._control.notify(notification)

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        return await self._control.ask(method, dict(params), timeout)

    # State goes through the creating request's env: the same owner, store client and handle table.

    async def load_value(self, key: str) -> bytes | None:
        return await self._origin.load_value(key)

    async def store_value(self, key: str, value: bytes) -> None:
        await self._origin.store_value(key, value)

    async def update_value(self, key: str, fn: Callable[[Any], Any], default: Any) -> Any:
        return await self._origin.update_value(key, fn, default)

    async def delete_value(self, key: str) -> None:
        await self._origin.delete_value(key)

    async def use_handle(self, handle: StateHandle) -> None:
        await self._origin.use_handle(handle)

    async def open_handle(
        self, *, ttl: float | None = None, idle_timeout: float | None = None
    ) -> StateHandle:
        return await self._origin.open_handle(ttl=ttl, idle_timeout=idle_timeout)

    async def close_handle(self, handle: StateHandle) -> None:
        await self._origin.close_handle(handle)

    async def set_log_level(self, level: LoggingLevel) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "logging/setLevel is a session request, not part of a task")

    async def subscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/subscribe is a session request, not part of a task")

    async def unsubscribe(self, uri: str) -> None:
        raise JsonRpcError(INTERNAL_ERROR, "resources/unsubscribe is a session request, not part of a task")
