"""The 2026-07-28 tasks extension (SEP-2663) in memory: negotiation, server-directed creation,
tasks/get with the result inlined, tasks/update, cancel acks, the MRTR prelude, and owner isolation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import trio
from _tasks_app import app, gates, spin_steps
from mcpvisor.runtime.protocol import JsonRpcError
from mcpvisor.runtime.server import Context, InputRequired, Server, start_server
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client

EXT = "io.modelcontextprotocol/tasks"
V2 = "2026-07-28"
WITH_EXT: Mapping[str, Any] = {"elicitation": {}, "extensions": {EXT: {}}}


async def until(client: MemoryClient, task_id: str, *statuses: str) -> Mapping[str, Any]:
    with trio.fail_after(5):
        for _ in range(10_000):
            got = await client.request("tasks/get", {"taskId": task_id})
            if got["status"] in statuses:
                return got
            await trio.sleep(0.01)
    raise AssertionError("unreachable")


async def test_advertised_as_an_extension_only_on_2026() -> None:
    async with start_server(app) as running, open_memory_client(running, protocol_version=V2) as client:
        caps = (await client.request("server/discover"))["capabilities"]
        assert caps["extensions"] == {EXT: {}}
        assert "tasks" not in caps


async def test_without_the_extension() -> None:
    async with start_server(app) as running, open_memory_client(running, protocol_version=V2) as client:
        result = await client.call_tool("add", {"a": 1, "b": 2})  # optional: runs synchronously
        assert result["resultType"] == "complete" and result["structuredContent"] == {"result": 3}
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("gate", {"name": "x"})  # required: -32021
        assert info.value.code == -32021
        assert info.value.data == {"requiredCapabilities": {"extensions": {EXT: {}}}}
        for method in ("tasks/get", "tasks/update", "tasks/cancel"):
            with pytest.raises(JsonRpcError) as info:
                await client.request(method, {"taskId": "t"})
            assert info.value.code == -32021


async def test_lifecycle() -> None:
    async with (
        start_server(app) as running,
        open_memory_client(running, protocol_version=V2, capabilities=WITH_EXT) as client,
    ):
        created = await client.call_tool("add", {"a": 2, "b": 2})
        assert created["resultType"] == "task" and "task" not in created
        assert created["ttlMs"] == 3_600_000 and created["pollIntervalMs"] == 1000
        done = await until(client, created["taskId"], "completed")
        assert done["resultType"] == "complete"
        assert done["result"]["structuredContent"] == {"result": 4}
        assert "io.modelcontextprotocol/related-task" not in (done["result"].get("_meta") or {})
        tool_error = await client.call_tool("tool_error")
        ended = await until(client, tool_error["taskId"], "completed", "failed")
        assert ended["status"] == "completed" and ended["result"]["isError"] is True
        rpc_error = await client.call_tool("rpc_error")
        failed = await until(client, rpc_error["taskId"], "completed", "failed")
        assert failed["status"] == "failed" and failed["error"]["code"] == -32602 and "result" not in failed
        for method in ("tasks/result", "tasks/list"):
            with pytest.raises(JsonRpcError) as info:
                await client.request(method, {"taskId": created["taskId"]})
            assert info.value.code == -32601
        with pytest.raises(JsonRpcError) as info:
            await client.request("tasks/get", {"taskId": "nope"})
        assert info.value.code == -32602


async def test_cancel_is_an_ack_and_stops_the_body() -> None:
    async with (
        start_server(app) as running,
        open_memory_client(running, protocol_version=V2, capabilities=WITH_EXT) as client,
    ):
        task_id = (await client.call_tool("spin"))["taskId"]
        ack = await client.request("tasks/cancel", {"taskId": task_id})
        assert ack["resultType"] == "complete" and "taskId" not in ack
        steps = spin_steps[0]
        await trio.sleep(0.1)
        assert spin_steps[0] == steps
        assert (await client.request("tasks/get", {"taskId": task_id}))["status"] == "cancelled"
        again = await client.request("tasks/cancel", {"taskId": task_id})  # idempotent on a terminal task
        assert again["resultType"] == "complete"


async def test_input_through_tasks_update() -> None:
    async with (
        start_server(app) as running,
        open_memory_client(running, protocol_version=V2, capabilities=WITH_EXT) as client,
    ):
        task_id = (await client.call_tool("ask_name"))["taskId"]
        waiting = await until(client, task_id, "input_required")
        (key, request), *_ = waiting["inputRequests"].items()
        assert request["method"] == "elicitation/create"
        ack = await client.request(
            "tasks/update",
            {
                "taskId": task_id,
                "inputResponses": {
                    "unknown": {"ignored": True},
                    key: {"action": "accept", "content": {"name": "Grace"}},
                },
            },
        )
        assert ack["resultType"] == "complete"
        done = await until(client, task_id, "completed")
        assert done["result"]["content"][0]["text"] == "hello Grace"


prelude_app = Server("prelude")


@prelude_app.tool(task="required")
async def gather(ctx: Context) -> str | InputRequired:
    answer = ctx.input_responses.get("who")
    if answer is None:
        return InputRequired({"who": InputRequired.elicitation("Who?", {"type": "object"})})
    await trio.sleep(0.3)
    return f"done for {answer['content']['name']}"


async def test_mrtr_prelude_then_task() -> None:
    async with (
        start_server(prelude_app) as running,
        open_memory_client(running, protocol_version=V2, capabilities=WITH_EXT) as client,
    ):
        first = await client.call_tool("gather")
        assert first["resultType"] == "input_required" and "taskId" not in first
        second = await client.request(
            "tools/call",
            {
                "name": "gather",
                "arguments": {},
                "inputResponses": {"who": {"action": "accept", "content": {"name": "Alan"}}},
            },
        )
        assert second["resultType"] == "task" and "requestState" not in second
        done = await until(client, second["taskId"], "completed")
        assert done["result"]["content"][0]["text"] == "done for Alan"


async def test_owners_cannot_read_each_others_tasks() -> None:
    """A session's task is not found by a stateless request, and the other way round."""
    async with (
        start_server(app) as running,
        open_memory_client(running) as session,
        open_memory_client(running, protocol_version=V2, capabilities=WITH_EXT) as stateless,
    ):
        created = await session.request(
            "tools/call", {"name": "gate", "arguments": {"name": "owners"}, "task": {}}
        )
        session_task = created["task"]["taskId"]
        stateless_task = (await stateless.call_tool("gate", {"name": "owners"}))["taskId"]
        for method in ("tasks/get", "tasks/cancel"):
            with pytest.raises(JsonRpcError) as info:
                await stateless.request(method, {"taskId": session_task})
            assert info.value.code == -32602
        with pytest.raises(JsonRpcError) as info:
            await stateless.request("tasks/update", {"taskId": session_task, "inputResponses": {}})
        assert info.value.code == -32602
        for method in ("tasks/get", "tasks/result", "tasks/cancel"):
            with pytest.raises(JsonRpcError) as info:
                await session.request(method, {"taskId": stateless_task})
            assert info.value.code == -32602
        assert [t["taskId"] for t in (await session.request("tasks/list"))["tasks"]] == [session_task]
        gates["owners"].set()
