"""The server's bounds (docs/server.md "Limits"): sessions, requests per session, stateless requests,
and abandoned requests freeing their place. Over a real loopback socket where HTTP statuses matter,
in-process where the wire is stdio or memory. Bounded: the long abuse runs are in benchmarks/."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
import trio
import trio.testing
from _http_messages import stateless, stateless_headers
from mcpvisor.runtime.server import (
    SERVER_BUSY,
    Context,
    RequestLimitReached,
    RunningServer,
    Server,
    ServerLimits,
    SessionLimitReached,
    start_server,
)
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.memory import open_memory_client
from mcpvisor.runtime.transports.stdio import serve_stdio

app = Server("limits", "1.0.0")

#: ``hold`` waits on ``gates[tag]``; ``stopped`` records each ``hold`` that was cancelled.
gates: dict[str, trio.Event] = {}
stopped: list[str] = []


@app.tool
async def hold(ctx: Context, tag: str) -> str:
    done = False
    try:
        await gates[tag].wait()
        done = True
    finally:
        if not done:
            stopped.append(tag)
    return tag


@app.tool
def add(a: int, b: int) -> int:
    return a + b


JSON_ONLY = {"accept": "application/json", "content-type": "application/json"}
SSE = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@asynccontextmanager
async def served(
    http: dict[str, Any] | None = None, **limits: Any
) -> AsyncIterator[tuple[RunningServer, str]]:
    async with start_server(app, **limits) as running, trio.open_nursery() as nursery:
        bound = await nursery.start(
            functools.partial(serve_http, running, port_number=0, **(http or {}))  # type: ignore[arg-type]
        )
        yield running, f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


def init(i: int = 0) -> dict[str, Any]:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": i, "method": "initialize", "params": params}


async def open_session(client: httpx2.AsyncClient, url: str) -> dict[str, str]:
    opened = await client.post(url, json=init(), headers=JSON_ONLY)
    assert opened.status_code == 200, opened.text
    headers = {
        **JSON_ONLY,
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-11-25",
    }
    done = await client.post(
        url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    )
    assert done.status_code == 202
    return headers


def call(i: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": i,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def wait_until(predicate: Any, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 (counters across tasks and a socket: no event)
            await trio.sleep(0.01)


async def test_default_limits_are_bounded() -> None:
    async with start_server(app) as running:
        assert running.limits == ServerLimits(
            max_sessions=10_000,
            max_requests_per_session=128,
            max_queued_requests_per_session=1024,
            max_stateless_requests=1024,
        )
    with pytest.raises(ValueError, match="max_requests_per_session must be at least 1"):
        ServerLimits(max_requests_per_session=0)


async def test_the_session_cap_answers_503_with_retry_after_and_a_deleted_session_frees_a_place() -> None:
    with trio.fail_after(30):
        async with served(max_sessions=2) as (running, url), httpx2.AsyncClient(timeout=10) as client:
            first = await open_session(client, url)
            await open_session(client, url)
            refused = await client.post(url, json=init(), headers=JSON_ONLY)
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert "mcp-session-id" not in refused.headers
            assert refused.json()["error"]["code"] == SERVER_BUSY
            assert "max_sessions" in refused.json()["error"]["message"]
            assert running.stats.sessions_refused == 1
            deleted = await client.delete(url, headers=first)
            assert deleted.status_code == 200
            await open_session(client, url)  # the freed place lets a new session in
            assert len(running.session_ids()) == 2


async def test_the_in_memory_session_cap_is_a_clear_error() -> None:
    async with start_server(app, max_sessions=1) as running, open_memory_client(running):
        with pytest.raises(SessionLimitReached, match=r"maximum of 1 sessions \(max_sessions\)"):
            async with open_memory_client(running):
                pass


async def test_requests_over_the_session_limit_get_429_and_another_session_stays_served() -> None:
    gates["flood"] = trio.Event()
    limits = {"max_requests_per_session": 2, "max_queued_requests_per_session": 2}
    with trio.fail_after(30):
        async with (
            served(**limits) as (running, url),
            httpx2.AsyncClient(timeout=10) as flooder,
            httpx2.AsyncClient(timeout=10) as fresh,
            trio.open_nursery() as nursery,
        ):
            headers = await open_session(flooder, url)
            sid = headers["mcp-session-id"]
            answers: list[Any] = []

            async def one(i: int) -> None:
                response = await flooder.post(url, json=call(i, "hold", {"tag": "flood"}), headers=headers)
                answers.append(response.json())

            for i in range(1, 5):  # two run, two wait for a turn
                nursery.start_soon(one, i)
            await wait_until(lambda: running.requests_in_flight(sid) == 4)
            refused = await flooder.post(url, json=call(5, "hold", {"tag": "flood"}), headers=headers)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == SERVER_BUSY
            assert "the limit is 4" in refused.json()["error"]["message"]
            assert running.stats.requests_refused == 1
            # Another client's session is not held up by the flooded one.
            other = await open_session(fresh, url)
            added = await fresh.post(url, json=call(9, "add", {"a": 2, "b": 3}), headers=other)
            assert added.json()["result"]["structuredContent"] == {"result": 5}
            gates["flood"].set()
            await wait_until(lambda: len(answers) == 4)
            assert sorted(a["result"]["content"][0]["text"] for a in answers) == ["flood"] * 4


async def test_the_stateless_limit_answers_429() -> None:
    gates["stateless"] = trio.Event()
    with trio.fail_after(30):
        async with (
            served(max_stateless_requests=1) as (running, url),
            httpx2.AsyncClient(timeout=10) as client,
            trio.open_nursery() as nursery,
        ):
            body = stateless("tools/call", {"name": "hold", "arguments": {"tag": "stateless"}})
            nursery.start_soon(
                functools.partial(
                    client.post, url, json=body, headers=stateless_headers("tools/call", "hold")
                )
            )
            await wait_until(
                lambda: running.stats.requests_refused == 0 and "stateless" in gates and _busy(running)
            )
            second = stateless("tools/list", {})
            refused = await client.post(url, json=second, headers=stateless_headers("tools/list"))
            assert refused.status_code == 429 and "retry-after" in refused.headers
            assert "server-wide" in refused.json()["error"]["message"]
            gates["stateless"].set()


def _busy(running: RunningServer) -> bool:
    runner = running._requests
    return runner is not None and runner.active == 1


@pytest.mark.parametrize("http_server", ["h11", "hypercorn"])
async def test_an_abandoned_json_request_is_cancelled_and_frees_its_place(http_server: str) -> None:
    tag = f"abandoned-json-{http_server}"
    gates[tag] = trio.Event()
    with trio.fail_after(30):
        async with (
            served(http={"server": http_server}) as (running, url),
            httpx2.AsyncClient(timeout=10) as client,
        ):
            headers = await open_session(client, url)
            sid = headers["mcp-session-id"]
            with trio.move_on_after(0.3):  # the client gives up: its connection closes
                await client.post(url, json=call(2, "hold", {"tag": tag}), headers=headers)
            await wait_until(lambda: running.requests_in_flight(sid) == 0)
            assert tag in stopped and running.stats.requests_abandoned == 1
            # A JSON answer the client waits for is not mistaken for an abandoned one.
            gates["kept"] = trio.Event()
            gates["kept"].set()
            kept = await client.post(url, json=call(3, "hold", {"tag": "kept"}), headers=headers)
            assert kept.json()["result"]["content"][0]["text"] == "kept"
            assert running.stats.requests_abandoned == 1


async def test_an_abandoned_sse_request_is_cancelled_once_nobody_resumed_it() -> None:
    gates["abandoned-sse"] = trio.Event()
    with trio.fail_after(30):
        async with (
            served(http={"abandon_after": 0.2}) as (running, url),
            httpx2.AsyncClient(timeout=10) as client,
        ):
            headers = {**await open_session(client, url), **SSE}
            sid = headers["mcp-session-id"]
            body = call(2, "hold", {"tag": "abandoned-sse"})
            async with client.stream("POST", url, json=body, headers=headers) as response:
                assert response.headers["content-type"] == "text/event-stream"
                async for _ in response.aiter_bytes():
                    break  # the priming event: the stream is resumable; then leave
            await trio.sleep(0.1)
            assert running.requests_in_flight(sid) == 1, "a disconnect alone is no cancellation"
            await wait_until(lambda: running.requests_in_flight(sid) == 0)
            assert "abandoned-sse" in stopped and running.stats.requests_abandoned == 1


async def test_stdio_answers_the_excess_with_server_busy() -> None:
    gates["stdio"] = trio.Event()
    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
    calls = [call(i, "hold", {"tag": "stdio"}) for i in (2, 3, 4)]

    def lines(*messages: dict[str, Any]) -> bytes:
        return b"".join(json.dumps(m).encode() + b"\n" for m in messages)

    received: list[Any] = []
    with trio.fail_after(30):
        async with (
            start_server(app, max_requests_per_session=1, max_queued_requests_per_session=1) as running,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(
                functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
            )

            async def read() -> None:
                buffer = b""
                while True:
                    chunk = await stdout_receive.receive_some()
                    if not chunk:
                        return
                    buffer += chunk
                    *done, buffer = buffer.split(b"\n")
                    received.extend(json.loads(line) for line in done)

            nursery.start_soon(read)
            await stdin_send.send_all(lines(init(1)))
            await wait_until(lambda: any(m.get("id") == 1 for m in received))  # initialize is a request too
            await stdin_send.send_all(
                lines({"jsonrpc": "2.0", "method": "notifications/initialized"}, *calls)
            )
            await wait_until(lambda: any(m.get("id") == 4 for m in received))
            refused = next(m for m in received if m.get("id") == 4)
            assert refused["error"]["code"] == SERVER_BUSY
            assert refused["error"]["data"] == {"retryAfter": 1.0, "limit": 2}
            gates["stdio"].set()
            await wait_until(lambda: {m.get("id") for m in received} >= {1, 2, 3, 4})
            assert [m["result"]["content"][0]["text"] for m in received if m.get("id") in (2, 3)] == [
                "stdio"
            ] * 2
            nursery.cancel_scope.cancel()


async def test_in_memory_request_over_the_limit_raises() -> None:
    gates["memory"] = trio.Event()
    async with (
        start_server(app, max_requests_per_session=1, max_queued_requests_per_session=1) as running,
        open_memory_client(running) as client,
        trio.open_nursery() as nursery,
    ):
        for _ in range(2):
            nursery.start_soon(functools.partial(client.call_tool, "hold", {"tag": "memory"}))
        assert client.session_id is not None
        sid = client.session_id
        await wait_until(lambda: running.requests_in_flight(sid) == 2)
        with pytest.raises(RequestLimitReached, match="the limit is 2"):
            await client.call_tool("add", {"a": 1, "b": 2})
        gates["memory"].set()


async def test_a_client_that_resumes_in_time_keeps_its_request() -> None:
    gates["resumed"] = trio.Event()
    with trio.fail_after(30):
        async with (
            served(http={"abandon_after": 0.3}) as (running, url),
            httpx2.AsyncClient(timeout=10) as client,
        ):
            headers = {**await open_session(client, url), **SSE}
            sid = headers["mcp-session-id"]
            body = call(2, "hold", {"tag": "resumed"})
            async with client.stream("POST", url, json=body, headers=headers) as response:
                async for chunk in response.aiter_bytes():
                    last_id = chunk.decode().split("id: ", 1)[1].split("\n", 1)[0]  # the priming event
                    break
            resume = {**headers, "accept": "text/event-stream", "last-event-id": last_id}
            texts: list[str] = []
            headed = trio.Event()

            async def follow() -> None:
                async with client.stream("GET", url, headers=resume) as resumed:
                    assert resumed.status_code == 200
                    headed.set()
                    texts.append(b"".join([chunk async for chunk in resumed.aiter_bytes()]).decode())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow)
                with trio.fail_after(5):  # the head comes at once, though no event is pending
                    await headed.wait()
                await trio.sleep(0.6)  # past abandon_after, but a connection follows the stream
                assert running.requests_in_flight(sid) == 1 and "resumed" not in stopped
                gates["resumed"].set()
            assert '"id":2' in texts[0] and '"text":"resumed"' in texts[0]
            assert running.stats.requests_abandoned == 0


async def test_stdio_initialize_over_the_session_cap_is_answered() -> None:
    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
    with trio.fail_after(30):
        async with (
            start_server(app, max_sessions=1) as running,
            open_memory_client(running),  # the port is shared: its one session is taken
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(
                functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
            )
            await stdin_send.send_all(json.dumps(init(1)).encode() + b"\n")
            line = b""
            while not line.endswith(b"\n"):
                line += await stdout_receive.receive_some()
            refused = json.loads(line)
            assert refused["id"] == 1 and refused["error"]["code"] == SERVER_BUSY
            assert "max_sessions" in refused["error"]["message"]
            nursery.cancel_scope.cancel()


async def test_a_get_stream_that_is_not_read_drops_counted_notifications_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server("standalone")

    @server.resource("memo://a")
    async def memo() -> str:
        return "a"

    async with start_server(server) as running, open_memory_client(running) as client:
        assert client.session_id is not None
        await client.request("resources/subscribe", {"uri": "memo://a"})
        stream = running.standalone_stream(client.session_id)  # opened, never read
        with caplog.at_level(logging.WARNING, "mcpvisor.runtime.tree"):
            for _ in range(300):
                await running.notify_resource_updated("memo://a")
        assert running.stats.notifications_dropped == 300 - 256  # the stream holds 256
        warnings = [r.getMessage() for r in caplog.records if "standalone" in r.getMessage()]
        assert len(warnings) == 1
        stream.close()
