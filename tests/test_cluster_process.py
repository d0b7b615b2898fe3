"""Real ``mcpvisor demo`` processes on one private redis-server (issue 11, many nodes on one Redis).

- A DELETE through node A ends the session's GET stream open on node B (it used to stay open).
- A task running on a node that is SIGKILLed is settled as failed by a survivor once the dead node's
  liveness lease expires, and every finished task's result is readable through any node.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import trio
from _demo_process import start_demo, stop_demos
from _http_messages import BOTH
from test_session_nodes_process import PROTOCOL, Client, _body, nodes


@contextmanager
def demo_processes(*args: str, count: int) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    """``count`` demo processes (process, URL); stopped (or reaped, if killed) by pid at the end."""
    started: list[tuple[subprocess.Popen[str], str]] = []
    try:
        for i in range(count):
            started.append(start_demo("--transport", "http", "--port", "0", "--node-id", f"n{i}", *args))
        yield started
    finally:
        stop_demos(proc for proc, _ in started)


def sse_messages(text: str) -> list[Any]:
    return [
        json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()
    ]


async def test_delete_through_one_node_ends_the_get_stream_on_another(redis_server: str) -> None:
    with trio.fail_after(60), nodes(redis_server) as (a, b):
        async with httpx2.AsyncClient(timeout=30) as http:
            client = Client(http)
            await client.initialize(a)
            assert await client.count(b) == 1  # b serves the session too (resumed from the store)
            headers = {
                "accept": "text/event-stream",
                "mcp-session-id": client.session_id,
                "mcp-protocol-version": PROTOCOL,
            }
            ended = trio.Event()
            async with trio.open_nursery() as nursery:

                async def listen_on_b(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    async with http.stream("GET", b, headers=headers) as response:
                        assert response.status_code == 200, response.status_code
                        task_status.started()
                        async for _ in response.aiter_bytes():
                            pass
                    ended.set()

                await nursery.start(listen_on_b)
                await trio.sleep(0.3)
                assert not ended.is_set()
                assert await client.delete(a) == 200
                with trio.fail_after(15):  # before the fix: open until the client gave up
                    await ended.wait()
            response = await client.call(b)
            assert response.status_code == 404, response.text


async def call(http: httpx2.AsyncClient, client: Client, url: str, method: str, params: Any) -> Any:
    client._next_id += 1
    request = {"jsonrpc": "2.0", "id": client._next_id, "method": method, "params": params}
    headers = {**BOTH, "mcp-session-id": client.session_id, "mcp-protocol-version": PROTOCOL}
    response = await http.post(url, json=request, headers=headers)
    assert response.status_code == 200, (response.status_code, response.text)
    return _body(response)


async def test_a_task_on_a_killed_node_fails_and_results_are_read_through_any_node(redis_server: str) -> None:
    extra = ("--state-store", redis_server, "--task-backend", redis_server, "--node-ttl", "1")
    with trio.fail_after(90), demo_processes(*extra, count=2) as ((killed, a), (_, b)):
        async with httpx2.AsyncClient(timeout=30) as http:
            client = Client(http)
            await client.initialize(a)
            quick = await call(
                http,
                client,
                a,
                "tools/call",
                {"name": "long_job", "arguments": {"steps": 1, "delay": 0.05}, "task": {}},
            )
            quick_id = quick["result"]["task"]["taskId"]
            done = await call(http, client, b, "tasks/result", {"taskId": quick_id})  # through the other node
            assert "long job done after 1 steps" in json.dumps(done["result"]), done
            stuck = await call(
                http, client, a, "tools/call", {"name": "long_job", "arguments": {"steps": 1000}, "task": {}}
            )
            stuck_id = stuck["result"]["task"]["taskId"]
            status = await call(http, client, b, "tasks/get", {"taskId": stuck_id})
            assert status["result"]["status"] == "working"
            killed.kill()  # SIGKILL, by pid: mid-task, no orderly stop
            killed.wait(timeout=10)
            retryable = 0
            with trio.fail_after(30):
                while True:
                    # A owned the session: until its lease expires, B forwards to it, and a request
                    # forwarded to the dead owner fails with a retryable error (never hangs).
                    status = await call(http, client, b, "tasks/get", {"taskId": stuck_id})
                    if "error" in status:
                        assert status["error"]["data"]["retryable"] is True, status
                        assert "stopped" in status["error"]["message"], status
                        retryable += 1
                        continue
                    if status["result"]["status"] != "working":
                        break
                    await trio.sleep(0.2)
            assert retryable >= 1  # then B took the session over
            assert status["result"]["status"] == "failed", status
            assert "server stopped" in status["result"].get("statusMessage", ""), status
            done = await call(http, client, b, "tasks/result", {"taskId": quick_id})  # still readable
            assert "long job done" in json.dumps(done["result"])
