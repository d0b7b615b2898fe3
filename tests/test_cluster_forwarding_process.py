"""Forwarding between real server processes (issue 11): three ``mcpvisor run`` nodes on one Redis.

The session is created on node 1 (its owner); a call comes in through node 2, as a round-robin
balancer sends it, and what the client sends about that call goes through node 3: its answer to the
tool's elicitation, or its ``notifications/cancelled``. Raw HTTP (httpx), so every hop is visible.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio
from _cluster import Cluster, start_cluster
from _http_messages import BOTH, INIT
from _redis_server import require_redis_server

PROTOCOL = "2025-11-25"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    require_redis_server("redis-server is not on PATH; the cluster process tests need it")
    with start_cluster(tmp_path / "cluster", nodes=3) as running:
        yield running


def headers(sid: str | None = None) -> dict[str, str]:
    out = {**BOTH, "content-type": "application/json"}
    if sid is not None:
        out |= {"mcp-session-id": sid, "mcp-protocol-version": PROTOCOL}
    return out


async def events(response: httpx2.Response) -> AsyncIterator[Any]:
    """The JSON-RPC messages of an SSE response, as they arrive."""
    async for line in response.aiter_lines():
        if line.startswith("data:") and line[5:].strip():
            yield json.loads(line[5:])


async def open_session(http: httpx2.AsyncClient, url: str) -> str:
    init = {**INIT, "params": {**INIT["params"], "capabilities": {"elicitation": {}}}}
    response = await http.post(url, json=init, headers={**headers(), "accept": "application/json"})
    assert response.status_code == 200, response.text
    sid = response.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await http.post(url, json=note, headers=headers(sid))).status_code == 202
    return sid


def call(request_id: int, tool: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {}},
    }


async def test_an_elicitation_and_a_cancellation_of_a_forwarded_call_go_through_a_third_node(
    cluster: Cluster,
) -> None:
    owner, forwarder, third = (node.url for node in cluster.nodes)
    with trio.fail_after(60):
        async with httpx2.AsyncClient(timeout=30) as http, httpx2.AsyncClient(timeout=30) as other:
            sid = await open_session(http, owner)
            # 1. the tool on the owner elicits; the client answers through the third node
            seen: list[Any] = []
            async with http.stream("POST", forwarder, json=call(2, "ask"), headers=headers(sid)) as response:
                assert response.status_code == 200
                async for message in events(response):
                    seen.append(message)
                    if message.get("method") == "elicitation/create":
                        answer = {
                            "jsonrpc": "2.0",
                            "id": message["id"],
                            "result": {"action": "accept", "content": {"name": "zoe"}},
                        }
                        posted = await other.post(third, json=answer, headers=headers(sid))
                        assert posted.status_code == 202, posted.text
                    if message.get("id") == 2:
                        break
            final = seen[-1]
            assert final["id"] == 2 and "result" in final, seen
            assert json.loads(final["result"]["content"][0]["text"]) == {"hello": "zoe", "node": "node1"}
            # 2. a call through the forwarder, cancelled through the third node: no result, the stream ends
            got: list[Any] = []
            async with http.stream("POST", forwarder, json=call(3, "hold"), headers=headers(sid)) as response:
                assert response.status_code == 200
                await trio.sleep(0.5)  # the call runs on the owner
                cancel = {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": 3, "reason": "no longer needed"},
                }
                posted = await other.post(third, json=cancel, headers=headers(sid))
                assert posted.status_code == 202, posted.text
                with trio.fail_after(10):
                    got = [message async for message in events(response)]
            assert not any("result" in message for message in got), got
            json_only = {**headers(sid), "accept": "application/json"}
            response = await http.post(owner, json=call(4, "held"), headers=json_only)
            held = json.loads(response.json()["result"]["content"][0]["text"])
            assert held == {"cancelled": ["3"], "node": "node1"}  # the handler on the owner was cancelled
