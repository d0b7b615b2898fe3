"""TaskRuntime: the actor that owns the TaskBackend.

Minimal for now: task records are created and read through messages, so the backend has one owner as
the session store does. The MCP tasks protocol (polling, input relay, a TaskSupervisor of task bodies)
builds on this actor later.
"""

from __future__ import annotations

from typing import Any

import attrs
from mcpvisor.backends import TaskBackend, TaskRecord

from ..actors import Caller
from ._state_store_server import StoreFailed

#: The registry name of the TaskRuntime.
TASK_RUNTIME_NAME = "task_runtime"


@attrs.frozen
class CreateTask:
    record: TaskRecord


@attrs.frozen
class GetTask:
    task_id: str


@attrs.frozen
class ExpireTasks:
    pass


class TaskRuntime:
    """Behaviour: one TaskBackend operation per call; a backend error is replied, not a crash."""

    def __init__(self, backend: TaskBackend) -> None:
        self.backend = backend

    async def handle_call(self, msg: CreateTask | GetTask | ExpireTasks, _caller: Caller) -> Any:
        try:
            if type(msg) is CreateTask:
                return await self.backend.create(msg.record)
            if type(msg) is GetTask:
                return await self.backend.get(msg.task_id)
            if type(msg) is ExpireTasks:
                return await self.backend.expire()
        except Exception as exc:
            return StoreFailed(exc)
        raise TypeError(f"TaskRuntime got an unknown message {msg!r}")
