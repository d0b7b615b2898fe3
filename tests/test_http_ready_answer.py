"""A POST whose answer is ready at once (issue 14): head, priming event and answer in one write, and
nothing a slower answer or a client that leaves relies on is lost on the way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from _asgi_client import parse_sse, request
from _http_messages import BOTH, INIT, stateless, stateless_headers
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import READY_WAIT, McpHttpApp, mcp_asgi_app

JSON_TYPE = "application/json"


def build() -> Server:
    server = Server("ready")

    @server.tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    @server.tool
    async def slow(delay: float) -> str:
        """Answer after ``delay`` seconds."""
        await trio.sleep(delay)
        return "late"

    return server


@pytest.fixture
async def app() -> AsyncIterator[McpHttpApp]:
    async with start_server(build()) as port:
        yield mcp_asgi_app(port)


async def open_session(app: McpHttpApp) -> dict[str, str]:
    status, headers, _ = await request(app, "POST", headers={"accept": "application/json"}, body=INIT)
    assert status == 200
    sid = headers["mcp-session-id"]
    session = {**BOTH, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await request(app, "POST", headers=session, body=note))[0] == 202
    return session


def tool_call(rid: int, name: str, arguments: dict[str, Any]) -> bytes:
    params = {"name": name, "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}
    return json.dumps(body).encode()


async def drive(
    app: McpHttpApp, headers: dict[str, str], body: bytes, *, break_body: bool = False
) -> list[tuple[float, dict[str, Any]]]:
    """Every ASGI message the app sends, with when it was sent; ``break_body``: the client is gone by
    the first body write (it raises, as a closed connection does)."""
    sent: list[tuple[float, dict[str, Any]]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append((trio.current_time(), dict(message)))
        if break_body and message["type"] == "http.response.body":
            raise trio.BrokenResourceError("client went away")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in {**headers, "content-type": JSON_TYPE}.items()],
    }
    with trio.fail_after(5):
        await app(scope, receive, send)
    return sent


async def test_a_ready_sse_answer_is_one_body_write_with_the_priming_event(app: McpHttpApp) -> None:
    session = await open_session(app)
    sent = await drive(app, session, tool_call(2, "add", {"a": 2, "b": 3}))
    bodies = [m for _, m in sent if m["type"] == "http.response.body"]
    assert [m["type"] for _, m in sent] == ["http.response.start", "http.response.body"]
    assert dict(sent[0][1]["headers"])[b"content-type"] == b"text/event-stream"
    assert bodies[0]["more_body"] is False
    priming, answer = parse_sse(bodies[0]["body"])
    assert priming["data"] == "" and priming["id"] and "retry" in priming
    assert json.loads(answer["data"])["result"]["structuredContent"] == {"result": 5}
    assert answer["id"] != priming["id"]


async def test_a_slow_answer_still_gets_its_priming_event_first(app: McpHttpApp) -> None:
    session = await open_session(app)
    delay = READY_WAIT + 1.0
    start = trio.current_time()
    sent = await drive(app, session, tool_call(2, "slow", {"delay": delay}))
    bodies = [(t, m) for t, m in sent if m["type"] == "http.response.body" and m["body"]]
    first_at, first = bodies[0]
    # The head and priming event went out on their own (after READY_WAIT), before the answer existed.
    assert first["more_body"] is True and first_at - start < delay
    assert [e["data"] for e in parse_sse(first["body"])] == [""]
    answers = [json.loads(e["data"]) for _, m in bodies[1:] for e in parse_sse(m["body"]) if e.get("data")]
    assert answers[-1]["result"]["content"][0]["text"] == "late"


async def test_a_ready_answer_the_client_did_not_receive_is_resumable(app: McpHttpApp) -> None:
    session = await open_session(app)
    sent = await drive(app, session, tool_call(7, "add", {"a": 1, "b": 1}), break_body=True)
    (priming, _) = parse_sse(next(m["body"] for _, m in sent if m["type"] == "http.response.body"))
    resume = {**session, "accept": "text/event-stream", "last-event-id": priming["id"]}
    with trio.fail_after(5):
        status, _, body = await request(app, "GET", headers=resume)
    assert status == 200
    replayed = [json.loads(e["data"]) for e in parse_sse(body) if e.get("data")]
    assert [m["id"] for m in replayed] == [7] and replayed[0]["result"]["structuredContent"] == {"result": 2}


async def test_a_ready_json_answer_is_one_response(app: McpHttpApp) -> None:
    session = {**(await open_session(app)), "accept": "application/json"}
    sent = await drive(app, session, tool_call(3, "add", {"a": 4, "b": 4}))
    assert [m["type"] for _, m in sent] == ["http.response.start", "http.response.body"]
    assert json.loads(sent[1][1]["body"])["result"]["structuredContent"] == {"result": 8}


async def test_a_ready_stateless_answer_is_one_response(app: McpHttpApp) -> None:
    body = json.dumps(stateless("tools/call", {"name": "add", "arguments": {"a": 20, "b": 22}})).encode()
    sent = await drive(app, stateless_headers("tools/call", "add"), body)
    assert [m["type"] for _, m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0][1]["status"] == 200
    assert json.loads(sent[1][1]["body"])["result"]["structuredContent"] == {"result": 42}


async def test_a_slow_stateless_answer_still_arrives(app: McpHttpApp) -> None:
    call = stateless("tools/call", {"name": "slow", "arguments": {"delay": READY_WAIT + 0.1}})
    sent = await drive(app, stateless_headers("tools/call", "slow"), json.dumps(call).encode())
    answer = json.loads(b"".join(m.get("body", b"") for _, m in sent if m["type"] == "http.response.body"))
    assert answer["result"]["content"][0]["text"] == "late"
