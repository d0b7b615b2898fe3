"""Both wire formats, and a restart, on every shipped TaskBackend (memory, SQLite, Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from _tasks_app import app, gates
from mcpvisor.backends import MemoryTaskBackend, TaskBackend
from mcpvisor.backends._sqlite import SQLiteTaskBackend
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.memory import open_memory_client

EXT = {"extensions": {"io.modelcontextprotocol/tasks": {}}}
Factory = Callable[[], TaskBackend]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """A factory of backend objects sharing one store (a second object is a restarted server's)."""
    if request.param == "memory":
        shared = MemoryTaskBackend()
        return lambda: shared
    if request.param == "sqlite":
        return lambda: SQLiteTaskBackend(str(tmp_path / "tasks.db"))
    from mcpvisor.backends._redis import RedisTaskBackend

    url: str = request.getfixturevalue("redis_server")
    prefix: str = request.getfixturevalue("redis_prefix")
    return lambda: RedisTaskBackend(url, prefix=prefix)


@asynccontextmanager
async def backend_of(make: Factory) -> AsyncIterator[TaskBackend]:
    backend = make()
    try:
        yield backend
    finally:
        if not isinstance(backend, MemoryTaskBackend):
            await backend.aclose()


async def test_both_revisions(make_backend: Factory) -> None:
    with trio.fail_after(20):
        async with backend_of(make_backend) as backend, start_server(app, task_backend=backend) as running:
            async with open_memory_client(running) as client:
                created = await client.request(
                    "tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}, "task": {}}
                )
                task_id = created["task"]["taskId"]
                result = await client.request("tasks/result", {"taskId": task_id})
                assert result["structuredContent"] == {"result": 2}
                spin = (await client.request("tools/call", {"name": "spin", "arguments": {}, "task": {}}))[
                    "task"
                ]
                assert (await client.request("tasks/cancel", {"taskId": spin["taskId"]}))[
                    "status"
                ] == "cancelled"
                listed = await client.request("tasks/list")
                assert [t["taskId"] for t in listed["tasks"]] == [spin["taskId"], task_id]
            async with open_memory_client(running, protocol_version="2026-07-28", capabilities=EXT) as v2:
                created = await v2.call_tool("add", {"a": 3, "b": 4})
                for _ in range(500):
                    got = await v2.request("tasks/get", {"taskId": created["taskId"]})
                    if got["status"] == "completed":
                        break
                    await trio.sleep(0.01)
                assert got["result"]["structuredContent"] == {"result": 7}


async def test_restart_keeps_results_and_fails_what_was_running(make_backend: Factory) -> None:
    from mcpvisor.backends import TaskStatus
    from mcpvisor.runtime.tree._task_runtime import TASK_RUNTIME_NAME, GetTask

    gate = f"backend-restart-{uuid.uuid4().hex}"
    with trio.fail_after(20):
        async with backend_of(make_backend) as backend, start_server(app, task_backend=backend) as running:  # noqa: SIM117
            async with open_memory_client(running) as client:
                done = await client.request(
                    "tools/call", {"name": "add", "arguments": {"a": 2, "b": 2}, "task": {}}
                )
                done_id = done["task"]["taskId"]
                await client.request("tasks/result", {"taskId": done_id})
                stuck = (
                    await client.request(
                        "tools/call", {"name": "gate", "arguments": {"name": "backend-restart"}, "task": {}}
                    )
                )["task"]["taskId"]
        async with backend_of(make_backend) as backend, start_server(app, task_backend=backend) as running:
            ref = running.registry.whereis(TASK_RUNTIME_NAME)
            assert ref is not None
            assert (await ref.call(GetTask(done_id))).status is TaskStatus.COMPLETED
            failed = await ref.call(GetTask(stuck))
            assert failed.status is TaskStatus.FAILED and "server stopped" in (failed.status_message or "")
        gates.setdefault(gate, trio.Event()).set()
