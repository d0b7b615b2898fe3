"""Two real server processes on one shared state store (one Redis, one SQLite file) and one session.

A load balancer may send a session's requests to any node. Two data-loss bugs came from a node treating
its own actor as the owner of the stored session (issue 11):

- a DELETE through node A left the session alive at node B, with its values wiped (B answered
  ``count = 1`` where A answered 404);
- an idle close on node A (the client had moved to B) dropped the values B was using, so B's counts
  restarted from empty.

Each scenario runs two ``mcpvisor demo --transport http`` processes and talks plain HTTP to them (the
client picks the node per request, as a round-robin balancer would).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio
from _demo_process import start_demo, stop_demos
from _http_messages import BOTH, INIT

PROTOCOL = "2025-11-25"


@contextmanager
def nodes(store: str, *extra: str, count: int = 2) -> Iterator[list[str]]:
    """``count`` demo processes on ``store``; yields their URLs, stops them by pid."""
    procs: list[subprocess.Popen[str]] = []
    urls: list[str] = []
    try:
        for _ in range(count):
            proc, url = start_demo("--transport", "http", "--port", "0", "--state-store", store, *extra)
            procs.append(proc)
            urls.append(url)
        yield urls
    finally:
        stop_demos(procs)


def _body(response: httpx2.Response) -> Any:
    """The JSON-RPC message of a response, whether it came as JSON or as an SSE stream."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                return json.loads(line[5:])
        raise AssertionError(f"no data in the SSE answer: {response.text!r}")
    return response.json()


class Client:
    """One MCP session over plain HTTP, each request sent to the node the test names."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http
        self.session_id = ""
        self._next_id = 1

    def _headers(self) -> dict[str, str]:
        return {**BOTH, "mcp-session-id": self.session_id, "mcp-protocol-version": PROTOCOL}

    async def initialize(self, url: str) -> None:
        response = await self.http.post(url, json=INIT, headers=BOTH)
        assert response.status_code == 200, response.text
        self.session_id = response.headers["mcp-session-id"]
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        response = await self.http.post(url, json=note, headers=self._headers())
        assert response.status_code == 202, response.text

    async def call(self, url: str, tool: str = "counter") -> httpx2.Response:
        self._next_id += 1
        request = {
            "jsonrpc": "2.0",
            "id": self._next_id,
            "method": "tools/call",
            "params": {"name": tool, "arguments": {}},
        }
        return await self.http.post(url, json=request, headers=self._headers())

    async def count(self, url: str) -> int:
        """The session's counter after one more ``counter`` call through ``url``."""
        response = await self.call(url)
        assert response.status_code == 200, (response.status_code, response.text)
        result = _body(response)["result"]
        assert not result.get("isError"), result
        text: str = result["content"][0]["text"]  # "count = N (session ...)"
        return int(text.split()[2])

    async def delete(self, url: str) -> int:
        response = await self.http.delete(url, headers=self._headers())
        return response.status_code


@pytest.fixture(params=["redis", "sqlite"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store both nodes use: the test session's private redis-server, or one SQLite file."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_server")
        return url
    return f"sqlite:///{tmp_path / 'state.db'}"


async def test_a_session_deleted_on_one_node_is_404_on_every_node(shared_store: str) -> None:
    with trio.fail_after(60), nodes(shared_store, count=3) as (a, b, c):
        async with httpx2.AsyncClient(timeout=20) as http:
            client = Client(http)
            await client.initialize(a)
            assert await client.count(a) == 1
            assert await client.count(b) == 2  # b resumes the session from the store: a live actor there
            assert await client.count(a) == 3
            assert await client.delete(a) == 200
            # b still holds a live actor for the session: it must notice the DELETE before serving.
            for node in (b, a, c, b):
                response = await client.call(node)
                assert response.status_code == 404, (node, response.status_code, response.text)
            assert await client.delete(b) == 404


async def test_an_idle_close_on_one_node_keeps_the_values_another_node_uses(shared_store: str) -> None:
    idle = 1.5
    with trio.fail_after(60), nodes(shared_store, "--session-idle-timeout", str(idle)) as (a, b):
        async with httpx2.AsyncClient(timeout=20) as http:
            client = Client(http)
            await client.initialize(a)
            counts = [await client.count(a), await client.count(a)]
            # The client moves to b for longer than the idle lifetime: a closes its idle actor.
            deadline = trio.current_time() + 2.5 * idle
            while trio.current_time() < deadline:
                counts.append(await client.count(b))
                await trio.sleep(idle / 5)
            counts.append(await client.count(b))
            counts.append(await client.count(a))  # and back to a, which resumes it from the store
            assert counts == list(range(1, len(counts) + 1))


async def test_a_session_nobody_uses_ends_on_every_node_after_its_idle_lifetime(shared_store: str) -> None:
    idle = 1.0
    with trio.fail_after(60), nodes(shared_store, "--session-idle-timeout", str(idle)) as (a, b):
        async with httpx2.AsyncClient(timeout=20) as http:
            client = Client(http)
            await client.initialize(a)
            assert await client.count(a) == 1
            assert await client.count(b) == 2
            await trio.sleep(1.5 * idle)  # past the lifetime and its 10% grace on the store
            for node in (a, b):
                response = await client.call(node)
                assert response.status_code == 404, (node, response.status_code, response.text)
