"""Tasks over real HTTP: the 2025-11-25 utility on a session (plain HTTP, and the official `mcp` client
for what it models), and the 2026-07-28 extension with its routing headers."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import trio
from _http_messages import INIT, JSON_ONLY, stateless, stateless_headers
from _tasks_app import app, gates
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.http import serve_http

EXT = "io.modelcontextprotocol/tasks"


@asynccontextmanager
async def served(**options: Any) -> AsyncIterator[str]:
    async with start_server(app, **options) as port, trio.open_nursery() as nursery:
        bound = await nursery.start(functools.partial(serve_http, port, port_number=0))  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


class Session:
    """A 2025-11-25 session over plain JSON POSTs."""

    def __init__(self, client: httpx2.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url
        self.headers: dict[str, str] = {**JSON_ONLY, "content-type": "application/json"}
        self.ids = 100

    async def open(self) -> None:
        opened = await self.client.post(self.url, json=INIT, headers=self.headers)
        assert opened.status_code == 200, opened.text
        self.headers = {
            **self.headers,
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert (await self.client.post(self.url, json=done, headers=self.headers)).status_code == 202

    async def rpc(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.ids += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.ids, "method": method}
        if params is not None:
            body["params"] = params
        answer = await self.client.post(self.url, json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text
        reply: dict[str, Any] = answer.json()
        return reply


async def test_2025_11_25_tasks_over_http() -> None:
    with trio.fail_after(20):
        async with served() as url, httpx2.AsyncClient(timeout=10) as client:
            session = Session(client, url)
            await session.open()
            created = await session.rpc(
                "tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}, "task": {}}
            )
            task_id = created["result"]["task"]["taskId"]
            result = (await session.rpc("tasks/result", {"taskId": task_id}))["result"]
            assert result["structuredContent"] == {"result": 3}
            assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
            got = (await session.rpc("tasks/get", {"taskId": task_id}))["result"]
            assert got["status"] == "completed" and got["ttl"] == 3_600_000
            listed = (await session.rpc("tasks/list"))["result"]
            assert [t["taskId"] for t in listed["tasks"]] == [task_id]
            spinning = await session.rpc("tools/call", {"name": "spin", "arguments": {}, "task": {}})
            spin_id = spinning["result"]["task"]["taskId"]
            cancelled = (await session.rpc("tasks/cancel", {"taskId": spin_id}))["result"]
            assert cancelled["status"] == "cancelled"
            again = await session.rpc("tasks/cancel", {"taskId": spin_id})
            assert again["error"]["code"] == -32602
            other = Session(client, url)
            await other.open()
            assert (await other.rpc("tasks/get", {"taskId": task_id}))["error"]["code"] == -32602


async def test_a_task_survives_the_crash_tool_over_http() -> None:
    with trio.fail_after(20):
        async with served() as url, httpx2.AsyncClient(timeout=10) as client:
            session = Session(client, url)
            await session.open()
            created = await session.rpc(
                "tools/call", {"name": "gate", "arguments": {"name": "http-crash"}, "task": {}}
            )
            task_id = created["result"]["task"]["taskId"]
            crashed = await session.rpc("tools/call", {"name": "crash", "arguments": {}})
            assert crashed["error"]["code"] == -32603
            assert (await session.rpc("tasks/get", {"taskId": task_id}))["result"]["status"] == "working"
            gates["http-crash"].set()
            result = (await session.rpc("tasks/result", {"taskId": task_id}))["result"]
            assert result["content"][0]["text"] == "passed http-crash"


async def test_the_official_client_sees_the_capability_and_task_support() -> None:
    with trio.fail_after(20):
        async with (
            served() as url,
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            initialized = await session.initialize()
            tasks = initialized.capabilities.tasks
            assert tasks is not None and tasks.requests is not None and tasks.requests.tools is not None
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert tools["add"].execution is not None and tools["add"].execution.task_support == "optional"
            assert tools["gate"].execution is not None and tools["gate"].execution.task_support == "required"
            # An optional task tool called the ordinary way still answers inline.
            plain = await session.call_tool("add", {"a": 20, "b": 22})
            assert plain.structured_content == {"result": 42}


def _v2(method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = stateless(method, params)
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {EXT: {}}}
    return body


async def test_2026_07_28_extension_over_http() -> None:
    with trio.fail_after(20):
        async with served() as url, httpx2.AsyncClient(timeout=10) as client:
            call = _v2("tools/call", {"name": "add", "arguments": {"a": 5, "b": 5}})
            created = (
                await client.post(url, json=call, headers=stateless_headers("tools/call", "add"))
            ).json()
            task_id = created["result"]["taskId"]
            assert created["result"]["resultType"] == "task"
            get = _v2("tasks/get", {"taskId": task_id})
            for _ in range(200):
                got = (
                    await client.post(url, json=get, headers=stateless_headers("tasks/get", task_id))
                ).json()
                if got["result"]["status"] == "completed":
                    break
                await trio.sleep(0.01)
            assert got["result"]["result"]["structuredContent"] == {"result": 10}
            wrong = await client.post(url, json=get, headers=stateless_headers("tasks/get", "another-task"))
            assert wrong.status_code == 400 and wrong.json()["error"]["code"] == -32020
