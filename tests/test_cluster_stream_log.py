"""SSE streams resumed on another node of the cluster (issue 11: the event log in Redis).

Two servers ("nodes") in this process on one private redis-server, each with its own ``Server`` and its
own HTTP app, so a stream served by one can only be resumed by the other through Redis. A client's
``GET`` + ``Last-Event-ID`` goes to the node that did not serve the stream, as a round-robin balancer
sends it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
from _asgi_client import open_request, parse_sse, request
from _http_messages import BOTH, INIT
from mcpvisor.backends import RedisSessionStore, RedisTaskBackend
from mcpvisor.runtime.server import Context, Server, start_server
from mcpvisor.runtime.transports.http import McpHttpApp, mcp_asgi_app
from mcpvisor.runtime.transports.http._events import is_post_stream_key, parse_event_id


def make_app(gate: trio.Event) -> Server:
    app = Server("stream-log-tests")

    @app.tool()
    async def slow(ctx: Context, steps: int = 3) -> str:
        for i in range(steps):
            await ctx.report_progress(i + 1, steps)
        await ctx.close_sse_stream()  # the client must come back with GET + Last-Event-ID
        await gate.wait()
        return "done"

    @app.tool()
    async def quick(ctx: Context) -> str:
        return "ok"

    @app.tool()
    async def hang(ctx: Context) -> str:
        await trio.sleep_forever()
        return "never"

    return app


@asynccontextmanager
async def node(
    stack: AsyncExitStack, url: str, prefix: str, name: str, gate: trio.Event, **server: Any
) -> AsyncIterator[tuple[Any, McpHttpApp]]:
    store = RedisSessionStore(url, prefix=prefix)
    tasks = RedisTaskBackend(url, prefix=prefix)
    try:
        async with start_server(
            make_app(gate),
            session_state_store=store,
            task_backend=tasks,
            node_id=name,
            node_ttl=1.0,
            **server,
        ) as running:
            yield running, mcp_asgi_app(running, retry_ms=10)
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
            await tasks.aclose()


def headers(session_id: str, **extra: str) -> dict[str, str]:
    return {**BOTH, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25", **extra}


def call(rid: int, tool: str, **arguments: Any) -> dict[str, Any]:
    params = {"name": tool, "arguments": arguments, "_meta": {"progressToken": f"p{rid}"}}
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


async def open_session(app: McpHttpApp) -> str:
    status, hdrs, _ = await request(app, "POST", headers={"accept": "application/json"}, body=INIT)
    assert status == 200
    sid = hdrs["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await request(app, "POST", headers=headers(sid), body=note))[0] == 202
    return sid


async def test_a_post_stream_cut_on_one_node_resumes_on_the_other_with_its_ids(
    redis_server: str, redis_prefix: str
) -> None:
    gate = trio.Event()
    async with AsyncExitStack() as stack:
        a, app_a = await stack.enter_async_context(node(stack, redis_server, redis_prefix, "a", gate))
        _, app_b = await stack.enter_async_context(node(stack, redis_server, redis_prefix, "b", gate))
        sid = await open_session(app_a)
        async with open_request(app_a, "POST", headers=headers(sid), body=call(7, "slow")) as live:
            # the handler closed the connection (a poll); its request runs on at node a
            first = parse_sse(await live.read_all())
            progress = [e for e in first if e.get("data")]
            assert [json.loads(e["data"])["params"]["progress"] for e in progress] == [1, 2, 3]
            key, _ = parse_event_id(progress[-1]["id"]) or (0, 0)
            assert is_post_stream_key(key)
            resume = headers(sid, **{"last-event-id": progress[0]["id"]})
            with trio.fail_after(10):
                async with open_request(app_b, "GET", headers=resume) as b:
                    assert b.status == 200
                    await trio.sleep(0.2)
                    gate.set()
                    rest = parse_sse(await b.read_all())
        data = [json.loads(e["data"]) for e in rest if e.get("data")]
        # the events after the one named, under the ids node a gave them, then the answer
        assert [e["id"] for e in rest if e.get("data")][:2] == [progress[1]["id"], progress[2]["id"]]
        assert [d.get("params", {}).get("progress") for d in data[:2]] == [2, 3]
        assert data[-1]["id"] == 7 and data[-1]["result"]["content"][0]["text"] == "done"
        assert a.stream_log.mirrored_streams >= 1


async def test_a_stream_whose_node_stopped_answers_its_request_with_a_retryable_error(
    redis_server: str, redis_prefix: str
) -> None:
    gate = trio.Event()
    async with AsyncExitStack() as outer:
        _, app_b = await outer.enter_async_context(node(outer, redis_server, redis_prefix, "b", gate))
        async with AsyncExitStack() as stack:
            _, app_a = await stack.enter_async_context(node(stack, redis_server, redis_prefix, "a", gate))
            sid = await open_session(app_a)
            with trio.CancelScope() as cut:  # the client's connection is cut, its request runs on
                async with open_request(app_a, "POST", headers=headers(sid), body=call(9, "hang")) as live:
                    priming = await live.next_event()
                    assert priming is not None and priming["data"] == ""
                    await trio.sleep(0.2)  # past a flush: the stream is in Redis
                    cut.cancel()
        # node a stopped (its liveness lease released); the request it ran never answered
        resume = headers(sid, **{"last-event-id": priming["id"]})
        with trio.fail_after(10):
            async with open_request(app_b, "GET", headers=resume) as b:
                assert b.status == 200
                events = parse_sse(await b.read_all())
        answers = [json.loads(e["data"]) for e in events if e.get("data")]
        assert answers[-1]["id"] == 9
        assert answers[-1]["error"]["data"] == {"retryable": True}
        assert "retry" in answers[-1]["error"]["message"]


async def test_quick_requests_write_nothing_to_redis(redis_server: str, redis_prefix: str) -> None:
    gate = trio.Event()
    async with AsyncExitStack() as stack:
        a, app_a = await stack.enter_async_context(node(stack, redis_server, redis_prefix, "a", gate))
        sid = await open_session(app_a)
        # Flush by hand, after the requests: on a loaded machine a quick request may outlast one
        # 20 ms interval, and then it is (rightly) at risk; what is asserted is the skip of streams
        # already delivered.
        a.stream_log.flush_interval = 3600.0
        await trio.sleep(0.05)  # the loop's current 20 ms sleep ends; the next one is long
        for rid in range(10, 30):
            status, _, body = await request(app_a, "POST", headers=headers(sid), body=call(rid, "quick"))
            assert status == 200 and b'"ok"' in body
        await a.stream_log.flush()
        assert a.stream_log.mirrored_streams == 0
        # ... while a stream not yet delivered is written at the next flush
        with trio.CancelScope() as cut:
            async with open_request(app_a, "POST", headers=headers(sid), body=call(40, "hang")) as live:
                assert (await live.next_event()) is not None
                await a.stream_log.flush()
                assert a.stream_log.mirrored_streams == 1
                cut.cancel()


async def test_unknown_ids_lost_post_stream_is_gone_and_a_get_stream_opens_fresh(
    redis_server: str, redis_prefix: str
) -> None:
    gate = trio.Event()
    async with AsyncExitStack() as stack:
        _, app_a = await stack.enter_async_context(node(stack, redis_server, redis_prefix, "a", gate))
        sid = await open_session(app_a)
        # an odd key names a POST stream: no node has it, so its client learns it is gone
        status, _, body = await request(app_a, "GET", headers=headers(sid, **{"last-event-id": "12345-3"}))
        assert status == 410 and b"retry" in body
        # an even key names a GET stream: a fresh one opens, as on one node
        async with open_request(app_a, "GET", headers=headers(sid, **{"last-event-id": "12344-3"})) as live:
            assert live.status == 200
            priming = await live.next_event()
            assert priming is not None and priming["data"] == ""
