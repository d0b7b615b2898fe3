"""The 2025-11-25 tasks utility over sessions, in memory: create, poll, result, list, cancel, input,
isolation, crash survival, TTL expiry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
import trio
from _tasks_app import app, gates, spin_steps
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client
from mcpvisor.runtime.tree._task_runtime import TASK_RUNTIME_NAME

RELATED = "io.modelcontextprotocol/related-task"


async def call_task(
    client: MemoryClient, name: str, arguments: Mapping[str, Any] | None = None, **task: Any
) -> str:
    created = await client.request(
        "tools/call", {"name": name, "arguments": dict(arguments or {}), "task": task}
    )
    assert set(created) == {"task"}
    assert created["task"]["status"] == "working"
    return str(created["task"]["taskId"])


async def status_of(client: MemoryClient, task_id: str) -> str:
    return str((await client.request("tasks/get", {"taskId": task_id}))["status"])


async def eventually(predicate: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (bounded: fails after ``seconds``)."""
    with trio.fail_after(seconds):
        for _ in range(100_000):
            if await predicate():
                return
            await trio.sleep(0.01)


async def wait_status(client: MemoryClient, task_id: str, status: str) -> None:
    async def reached() -> bool:
        return await status_of(client, task_id) == status

    await eventually(reached)


async def test_capability_and_tool_execution() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        assert client.initialize_result is not None
        caps = client.initialize_result["capabilities"]
        assert caps["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        tools = {t["name"]: t for t in (await client.request("tools/list"))["tools"]}
        assert tools["add"]["execution"] == {"taskSupport": "optional"}
        assert tools["gate"]["execution"] == {"taskSupport": "required"}
        assert "execution" not in tools["plain"]
    async with (
        start_server(app) as running,
        open_memory_client(running, protocol_version="2025-06-18") as old,
    ):
        assert old.initialize_result is not None
        assert "tasks" not in old.initialize_result["capabilities"]
        # Before 2025-11-25 there are no tasks: params.task is ignored and the call runs inline.
        result = await old.request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}, "task": {}})
        assert result["structuredContent"] == {"result": 3}


async def test_create_poll_result() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        created = await client.request(
            "tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}, "task": {"ttl": 60_000}}
        )
        task = created["task"]
        assert task["ttl"] == 60_000 and task["pollInterval"] == 1000
        assert task["createdAt"].endswith("Z") and task["lastUpdatedAt"].endswith("Z")
        result = await client.request("tasks/result", {"taskId": task["taskId"]})
        assert result["structuredContent"] == {"result": 5}
        assert result["isError"] is False
        assert result["_meta"][RELATED] == {"taskId": task["taskId"]}
        got = await client.request("tasks/get", {"taskId": task["taskId"]})
        assert got["status"] == "completed" and got["taskId"] == task["taskId"]
        assert RELATED not in (got.get("_meta") or {})


async def test_result_waits_for_the_end_and_progress_is_related() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        client.listen()
        task_id = await call_task(client, "gate", {"name": "result-waits"}, ttl=60_000)
        assert await status_of(client, task_id) == "working"
        got: list[Mapping[str, Any]] = []
        async with trio.open_nursery() as nursery:

            async def collect() -> None:
                got.append(await client.request("tasks/result", {"taskId": task_id}))

            nursery.start_soon(collect)
            await trio.sleep(0.05)
            assert got == []  # still blocked: the body waits at its gate
            gates["result-waits"].set()
        assert got[0]["content"][0]["text"] == "passed result-waits"
        progress = [n for n in client.notifications if n.method == "notifications/progress"]
        statuses = [n for n in client.notifications if n.method == "notifications/tasks/status"]
        assert progress == [] or all(RELATED in (n.params or {}).get("_meta", {}) for n in progress)
        assert statuses and statuses[-1].params is not None and statuses[-1].params["status"] == "completed"


async def test_task_support_is_enforced() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("gate", {"name": "x"})
        assert info.value.code == -32601 and "must run as a task" in info.value.message
        with pytest.raises(JsonRpcError) as info:
            await client.request("tools/call", {"name": "plain", "arguments": {}, "task": {}})
        assert info.value.code == -32601 and "cannot run as a task" in info.value.message
        with pytest.raises(JsonRpcError) as info:
            await client.request("tools/call", {"name": "add", "arguments": {}, "task": {"ttl": -1}})
        assert info.value.code == -32602


async def test_list_pages_newest_first() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        ids = [await call_task(client, "add", {"a": i, "b": 0}) for i in range(60)]
        first = await client.request("tasks/list")
        assert len(first["tasks"]) == 50 and "nextCursor" in first
        second = await client.request("tasks/list", {"cursor": first["nextCursor"]})
        assert "nextCursor" not in second
        listed = [t["taskId"] for t in [*first["tasks"], *second["tasks"]]]
        assert sorted(listed) == sorted(ids)
        created = [t["createdAt"] for t in [*first["tasks"], *second["tasks"]]]
        assert created == sorted(created, reverse=True)
        with pytest.raises(JsonRpcError) as info:
            await client.request("tasks/list", {"cursor": "not-a-cursor"})
        assert info.value.code == -32602


async def test_cancel_stops_the_body() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        task_id = await call_task(client, "spin")

        async def spinning() -> bool:
            return spin_steps[0] >= 3

        await eventually(spinning)
        cancelled = await client.request("tasks/cancel", {"taskId": task_id})
        assert cancelled["status"] == "cancelled" and cancelled["statusMessage"]
        steps = spin_steps[0]
        await trio.sleep(0.1)
        assert spin_steps[0] == steps  # the body does no more work
        assert await status_of(client, task_id) == "cancelled"
        with pytest.raises(JsonRpcError) as info:
            await client.request("tasks/cancel", {"taskId": task_id})
        assert info.value.code == -32602 and "already cancelled" in info.value.message
        with pytest.raises(JsonRpcError):
            await client.request("tasks/result", {"taskId": task_id})
        tasks = running.registry.whereis(TASK_RUNTIME_NAME)
        assert tasks is not None


async def test_failures() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        tool_error = await call_task(client, "tool_error")
        result = await client.request("tasks/result", {"taskId": tool_error})
        assert result["isError"] is True and "could not be done" in result["content"][0]["text"]
        assert await status_of(client, tool_error) == "failed"
        rpc_error = await call_task(client, "rpc_error")
        with pytest.raises(JsonRpcError) as info:
            await client.request("tasks/result", {"taskId": rpc_error})
        assert (info.value.code, info.value.message, info.value.data) == (
            -32602,
            "bad job parameters",
            {"field": "job"},
        )
        assert await status_of(client, rpc_error) == "failed"


async def test_input_required_through_tasks_result() -> None:
    async def answer(method: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        assert method == "elicitation/create"
        assert params["_meta"][RELATED]["taskId"]
        return {"action": "accept", "content": {"name": "Ada"}}

    async with (
        start_server(app) as running,
        open_memory_client(running, capabilities={"elicitation": {}}, on_request=answer) as client,
    ):
        task_id = await call_task(client, "ask_name")
        await wait_status(client, task_id, "input_required")
        result = await client.request("tasks/result", {"taskId": task_id})
        assert result["content"][0]["text"] == "hello Ada"
        assert await status_of(client, task_id) == "completed"


async def test_body_uses_session_state() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        task_id = await call_task(client, "remember", {"value": 7})
        result = await client.request("tasks/result", {"taskId": task_id})
        assert result["structuredContent"] == {"result": 7}


async def test_a_session_sees_only_its_own_tasks() -> None:
    async with (
        start_server(app) as running,
        open_memory_client(running) as alice,
        open_memory_client(running) as bob,
    ):
        task_id = await call_task(alice, "gate", {"name": "isolation"})
        for method in ("tasks/get", "tasks/result", "tasks/cancel"):
            with pytest.raises(JsonRpcError) as info:
                await bob.request(method, {"taskId": task_id})
            assert info.value.code == -32602 and "not found" in info.value.message
        assert (await bob.request("tasks/list"))["tasks"] == []
        assert [t["taskId"] for t in (await alice.request("tasks/list"))["tasks"]] == [task_id]
        gates["isolation"].set()


async def test_task_outlives_a_session_crash() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        task_id = await call_task(client, "gate", {"name": "crash"})
        assert client.session_id is not None
        with pytest.raises(JsonRpcError):
            await client.call_tool("crash")
        sid = client.session_id

        async def restarted() -> bool:
            return running.session_incarnations(sid) >= 2

        await eventually(restarted)
        assert await status_of(client, task_id) == "working"
        gates["crash"].set()
        result = await client.request("tasks/result", {"taskId": task_id})
        assert result["content"][0]["text"] == "passed crash"


async def test_expired_task_is_not_found() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        task_id = await call_task(client, "add", {"a": 1, "b": 1}, ttl=300)
        assert await status_of(client, task_id) in ("working", "completed")  # before its ttl: there
        await trio.sleep(0.4)
        janitor = next(row.handle for row in running.tree.which_children() if row.id == "janitor")
        await janitor.sweep()
        with pytest.raises(JsonRpcError) as info:
            await client.request("tasks/get", {"taskId": task_id})
        assert info.value.code == -32602


async def test_durable_backend_restart_fails_running_tasks_and_keeps_results(tmp_path: Any) -> None:
    from mcpvisor.backends import TaskStatus
    from mcpvisor.backends._codec import decode
    from mcpvisor.runtime.tree._task_runtime import GetTask

    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    async with start_server(app, task_backend=url) as running, open_memory_client(running) as client:
        finished = await call_task(client, "add", {"a": 20, "b": 22})
        await client.request("tasks/result", {"taskId": finished})
        stuck = await call_task(client, "gate", {"name": "never-opened"})
        assert await status_of(client, stuck) == "working"
    # The process "died" with `stuck` running; a new server on the same file starts.
    async with start_server(app, task_backend=url) as running:
        ref = running.registry.whereis(TASK_RUNTIME_NAME)
        assert ref is not None
        record = await ref.call(GetTask(stuck))
        assert record.status is TaskStatus.FAILED
        assert "server stopped while this task was running" in (record.status_message or "")
        done = await ref.call(GetTask(finished))
        assert done.status is TaskStatus.COMPLETED
        assert decode(done.result)["structuredContent"] == {"result": 42}


async def test_a_task_runtime_crash_fails_its_orphans() -> None:
    from mcpvisor.backends import TaskStatus
    from mcpvisor.runtime.tree._task_runtime import GetTask

    async with start_server(app) as running, open_memory_client(running, close=False) as client:
        stuck = await call_task(client, "gate", {"name": "runtime-crash"})
        ref = running.registry.whereis(TASK_RUNTIME_NAME)
        assert ref is not None
        ref.request_stop(RuntimeError("boom"))

        async def replaced() -> bool:
            return running.registry.whereis(TASK_RUNTIME_NAME) not in (None, ref) and running.tree_ready()

        await eventually(replaced)
        new = running.registry.whereis(TASK_RUNTIME_NAME)
        assert new is not None
        record = await new.call(GetTask(stuck))
        assert record.status is TaskStatus.FAILED


async def test_max_running_tasks_refuses_with_a_clear_error() -> None:
    async with start_server(app, max_running_tasks=1) as running, open_memory_client(running) as client:
        first = await call_task(client, "gate", {"name": "max-running"})
        with pytest.raises(JsonRpcError) as info:
            await client.request("tools/call", {"name": "gate", "arguments": {"name": "x"}, "task": {}})
        assert info.value.code == -32603 and "max_running_tasks=1" in info.value.message
        assert [t["taskId"] for t in (await client.request("tasks/list"))["tasks"]] == [first]
        gates["max-running"].set()


async def test_the_demos_long_job_survives_its_crash_tool() -> None:
    from mcpvisor.runtime.server.demo import server as demo

    async with start_server(demo) as running, open_memory_client(running) as client:
        created = await client.request(
            "tools/call", {"name": "long_job", "arguments": {"steps": 3, "delay": 0.05}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        with pytest.raises(JsonRpcError):
            await client.call_tool("crash")
        result = await client.request("tasks/result", {"taskId": task_id})
        assert result["content"][0]["text"] == "long job done after 3 steps"
        assert client.session_id is not None and running.session_incarnations(client.session_id) == 2
