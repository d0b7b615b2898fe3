"""`serve_http` over a real loopback socket (hypercorn's trio worker) with the httpx client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import trio
from _asgi_client import parse_sse
from _fake_port import FakePort, fake_port
from _http_messages import BOTH, INIT
from mcpvisor.runtime.transports.http import serve_http

#: every test here runs on each request parser of our server (conftest.http_parser)
pytestmark = pytest.mark.usefixtures("http_parser")


@pytest.fixture
async def served(nursery: trio.Nursery) -> AsyncIterator[tuple[FakePort, str]]:
    async with fake_port() as port:
        bound = await nursery.start(
            lambda task_status: serve_http(port, port_number=0, task_status=task_status)
        )
        yield port, f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


async def test_serves_on_an_ephemeral_port_and_prints_nothing(
    served: tuple[FakePort, str], capsys: pytest.CaptureFixture[str]
) -> None:
    port, url = served
    assert not url.endswith(":0/mcp")
    async with httpx2.AsyncClient() as client:
        response = await client.post(url, json=INIT, headers=BOTH)
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        session_id = response.headers["mcp-session-id"]
        events = parse_sse(response.content)
        assert events[0]["data"] == "" and json.loads(events[1]["data"])["id"] == 1
        headers = {**BOTH, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "progress"}
        async with client.stream("POST", url, json=body, headers=headers) as streamed:
            chunks = [chunk async for chunk in streamed.aiter_bytes()]
        messages = [json.loads(e["data"]) for e in parse_sse(b"".join(chunks)) if e.get("data")]
        assert [m.get("method") for m in messages] == ["notifications/progress"] * 3 + [None]
        deleted = await client.delete(url, headers={"mcp-session-id": session_id})
        assert deleted.status_code == 200 and port.closed == [session_id]
    assert capsys.readouterr().out == ""


async def test_dns_rebinding_host_header_is_refused_over_the_wire(served: tuple[FakePort, str]) -> None:
    port, url = served
    async with httpx2.AsyncClient() as client:
        evil = await client.post(url, json=INIT, headers={**BOTH, "host": "evil.example.com"})
        assert evil.status_code == 403 and evil.json()["error"]["code"] == -32600
        good = await client.post(url, json=INIT, headers={**BOTH, "host": url.split("/")[2]})
        assert good.status_code == 200
    assert len(port.sessions) == 1


async def test_concurrent_post_streams_each_get_their_own_answer(served: tuple[FakePort, str]) -> None:
    _, url = served
    async with httpx2.AsyncClient() as client:
        init = await client.post(url, json=INIT, headers={"accept": "application/json"})
        headers = {**BOTH, "mcp-session-id": init.headers["mcp-session-id"]}
        results: dict[int, Any] = {}

        async def one(i: int) -> None:
            body = {"jsonrpc": "2.0", "id": i, "method": "echo", "params": {"i": i}}
            response = await client.post(url, json=body, headers=headers)
            data = [json.loads(e["data"]) for e in parse_sse(response.content) if e.get("data")]
            results[i] = data[-1]

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for i in range(3):
                    nursery.start_soon(one, i)
    assert results == {i: {"jsonrpc": "2.0", "id": i, "result": {"i": i}} for i in range(3)}


async def test_client_disconnect_then_resume_over_the_wire(served: tuple[FakePort, str]) -> None:
    port, url = served
    async with httpx2.AsyncClient() as client:
        init = await client.post(url, json=INIT, headers={"accept": "application/json"})
        sid = init.headers["mcp-session-id"]
        headers = {**BOTH, "mcp-session-id": sid}
        body = {"jsonrpc": "2.0", "id": 5, "method": "gate"}
        buffer = b""
        async with client.stream("POST", url, json=body, headers=headers) as streamed:
            async for chunk in streamed.aiter_bytes():
                buffer += chunk
                if buffer.count(b"\n\n") >= 2:  # priming + the log notification
                    break
        first_id = parse_sse(buffer)[0]["id"]
        port.gate.set()
        resume = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": first_id}
        with trio.fail_after(10):
            response = await client.get(url, headers=resume)
        messages = [json.loads(e["data"]) for e in parse_sse(response.content) if e.get("data")]
        assert messages[-1] == {"jsonrpc": "2.0", "id": 5, "result": {"released": True}}
