"""End to end: the real runtime (`start_server`) behind `serve_http`, driven by the official `mcp` client
and by raw HTTP for the stateless era."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import mcp_types
import pytest
import trio
from _http_messages import INIT, JSON_ONLY, stateless, stateless_headers
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcpvisor.runtime.server import Context, CrashSession, Server, start_server
from mcpvisor.runtime.transports.http import serve_http

#: every test here runs on each request parser of our server (conftest.http_parser)
pytestmark = pytest.mark.usefixtures("http_parser")

app = Server("http-e2e", "1.0.0")


@app.tool
async def counter(ctx: Context) -> int:
    n: int = await ctx.get_state("n", 0) + 1
    await ctx.set_state("n", n)
    return n


@app.tool
async def steps(ctx: Context, count: int, pause: float = 0.0) -> int:
    for i in range(count):
        await ctx.report_progress(i + 1, count)
        await trio.sleep(pause)
    return count


@app.tool
async def crash(ctx: Context) -> str:
    raise CrashSession("on purpose")


@app.tool
async def ask_name(ctx: Context) -> str:
    answer = await ctx.elicit("Your name?", {"type": "object", "properties": {"name": {"type": "string"}}})
    return f"hello {answer['content']['name']}"


@app.tool
def add(a: int, b: int) -> int:
    return a + b


@app.tool(
    input_schema={
        "type": "object",
        "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "query": {"type": "string"}},
        "required": ["region"],
    }
)
def regional(region: str, query: str = "") -> str:
    return f"{query} in {region}"


@app.tool
async def reconnect(ctx: Context, pause: float = 0.2) -> str:
    await ctx.report_progress(1, 2)
    await ctx.close_sse_stream()  # the POST's connection ends here; the client resumes with GET
    await trio.sleep(pause)
    await ctx.report_progress(2, 2)
    return "done after reconnecting"


@asynccontextmanager
async def served(**options: Any) -> AsyncIterator[str]:
    async with start_server(app) as port, trio.open_nursery() as nursery:
        bound = await nursery.start(
            functools.partial(serve_http, port, port_number=0, **options)  # type: ignore[arg-type]
        )
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def sdk_session(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def structured(result: Any) -> Any:
    assert not result.is_error, result
    return result.structured_content["result"]


async def test_sdk_client_initializes_lists_calls_and_gets_progress() -> None:
    with trio.fail_after(20):
        async with served() as url, sdk_session(url) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"counter", "steps", "crash", "add"} <= names
            assert structured(await session.call_tool("add", {"a": 2, "b": 40})) == 42
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            result = await session.call_tool("steps", {"count": 3}, progress_callback=on_progress)
            assert structured(result) == 3 and seen == [1, 2, 3]
            assert [structured(await session.call_tool("counter")) for _ in range(3)] == [1, 2, 3]


async def test_server_to_client_request_rides_the_post_stream() -> None:
    asked: list[str] = []

    async def on_elicit(context: Any, params: Any) -> Any:
        asked.append(params.message)
        return mcp_types.ElicitResult(action="accept", content={"name": "Ada"})

    with trio.fail_after(20):
        async with (
            served() as url,
            streamable_http_client(url) as (read, write),
            ClientSession(read, write, elicitation_callback=on_elicit) as session,
        ):
            await session.initialize()
            result = await session.call_tool("ask_name")
            assert not result.is_error and result.content[0].text == "hello Ada"  # type: ignore[union-attr]
            assert asked == ["Your name?"]


async def test_two_sessions_are_isolated() -> None:
    with trio.fail_after(20):
        async with served() as url, sdk_session(url) as one, sdk_session(url) as two:
            assert structured(await one.call_tool("counter")) == 1
            assert structured(await one.call_tool("counter")) == 2
            assert structured(await two.call_tool("counter")) == 1


async def test_crash_restarts_the_session_in_place_and_keeps_its_values() -> None:
    with trio.fail_after(20):
        async with served() as url, sdk_session(url) as victim, sdk_session(url) as bystander:
            assert structured(await victim.call_tool("counter")) == 1
            assert structured(await victim.call_tool("counter")) == 2
            assert structured(await bystander.call_tool("counter")) == 1
            try:
                crashed = await victim.call_tool("crash")
            except Exception as exc:  # the runtime answers with a JSON-RPC error; the SDK raises it
                assert getattr(getattr(exc, "error", None), "code", None) == -32603, repr(exc)
            else:
                assert crashed.is_error
            # Same Mcp-Session-Id (the SDK would fail on a 404), the values written before the crash.
            assert structured(await victim.call_tool("counter")) == 3
            assert structured(await bystander.call_tool("counter")) == 2


async def test_sdk_client_follows_server_initiated_polling() -> None:
    # The server cuts each POST stream short; the SDK resumes with GET + Last-Event-ID.
    with trio.fail_after(20):
        async with served(sse_poll_after=0.05, retry_ms=10) as url, sdk_session(url) as session:
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            result = await session.call_tool(
                "steps", {"count": 3, "pause": 0.1}, progress_callback=on_progress
            )
            assert structured(result) == 3 and seen == [1, 2, 3]


async def test_a_tool_ends_its_sse_stream_and_the_sdk_resumes() -> None:
    # No sse_poll_after: only the tool's ctx.close_sse_stream() cuts the POST stream short.
    with trio.fail_after(20):
        async with served(retry_ms=10) as url, sdk_session(url) as session:
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            result = await session.call_tool("reconnect", {}, progress_callback=on_progress)
            assert result.content[0].text == "done after reconnecting" and seen == [1, 2]  # type: ignore[union-attr]

        async with served(retry_ms=10) as url, httpx2.AsyncClient() as client:
            sse = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
            opened = await client.post(url, json=INIT, headers={**sse, "accept": "application/json"})
            sid = opened.headers["mcp-session-id"]
            headers = {**sse, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "reconnect", "arguments": {"pause": 0.3}},
            }
            cut = await client.post(url, json=call, headers=headers)
            assert cut.text.rstrip().endswith("retry: 10") and '"id":2' not in cut.text
            last_id = [line[4:] for line in cut.text.splitlines() if line.startswith("id: ")][-1]
            resumed = await client.get(
                url, headers={**headers, "accept": "text/event-stream", "last-event-id": last_id}
            )
            assert '"id":2' in resumed.text and "done after reconnecting" in resumed.text


async def test_list_changed_reaches_the_sdk_over_the_get_stream() -> None:
    grower = Server("grower", "1.0.0")

    def extra() -> str:
        return "extra"

    @grower.tool
    async def grow() -> str:
        grower.tool(name="extra")(extra)
        return "grown"

    seen: list[str] = []
    changed = trio.Event()

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
        if method is not None:
            seen.append(method)
        if method == "notifications/tools/list_changed":
            changed.set()

    with trio.fail_after(20):
        async with start_server(grower) as port, trio.open_nursery() as nursery:
            bound = await nursery.start(functools.partial(serve_http, port, port_number=0))
            url = f"http://127.0.0.1:{bound}/mcp"
            async with (
                streamable_http_client(url) as (read, write),
                ClientSession(read, write, message_handler=on_message) as session,
            ):
                await session.initialize()
                assert {t.name for t in (await session.list_tools()).tools} == {"grow"}
                await session.call_tool("grow")
                await changed.wait()  # not tied to the call: it came on the standalone GET stream
                assert {t.name for t in (await session.list_tools()).tools} == {"grow", "extra"}
            nursery.cancel_scope.cancel()


async def test_delete_ends_the_session_then_404() -> None:
    with trio.fail_after(20):
        async with served() as url, httpx2.AsyncClient() as client:
            init = await client.post(url, json=INIT, headers=JSON_ONLY)
            assert init.status_code == 200
            session = {**JSON_ONLY, "mcp-session-id": init.headers["mcp-session-id"]}
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert (await client.post(url, json=note, headers=session)).status_code == 202
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "counter"}}
            assert (await client.post(url, json=call, headers=session)).json()["result"][
                "structuredContent"
            ] == {"result": 1}
            assert (await client.delete(url, headers=session)).status_code == 200
            assert (await client.post(url, json=call, headers=session)).status_code == 404
            assert (await client.delete(url, headers=session)).status_code == 404


async def test_stateless_requests_over_raw_http() -> None:
    with trio.fail_after(20):
        async with served() as url, httpx2.AsyncClient() as client:
            body = stateless("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}})
            ok = await client.post(url, json=body, headers=stateless_headers("tools/call", "add"))
            assert ok.status_code == 200 and "mcp-session-id" not in ok.headers
            result = ok.json()["result"]
            assert result["structuredContent"] == {"result": 3} and result["resultType"] == "complete"

            wrong_name = await client.post(url, json=body, headers=stateless_headers("tools/call", "counter"))
            assert wrong_name.status_code == 400 and wrong_name.json()["error"]["code"] == -32020
            no_method = {k: v for k, v in stateless_headers("tools/call", "add").items() if k != "mcp-method"}
            missing = await client.post(url, json=body, headers=no_method)
            assert missing.status_code == 400 and missing.json()["error"]["code"] == -32020

            future = stateless("tools/list", {}, version="2099-01-01")
            unsupported = await client.post(
                url, json=future, headers=stateless_headers("tools/list", version="2099-01-01")
            )
            assert unsupported.status_code == 400
            error = unsupported.json()["error"]
            # Only the versions this path serves, exactly what server/discover lists.
            assert error["code"] == -32022 and error["data"]["supported"] == ["2026-07-28"]

            get = await client.get(
                url, headers={"accept": "text/event-stream", "mcp-protocol-version": "2026-07-28"}
            )
            assert get.status_code == 405

            both = {**stateless_headers("tools/list"), "accept": "application/json, text/event-stream"}
            listed = await client.post(url, json=stateless("tools/list", {}), headers=both)
            # An answer ready at once goes out as plain JSON even to a client that also takes SSE.
            assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
            assert {tool["name"] for tool in listed.json()["result"]["tools"]} >= {"add", "counter"}

            ping = await client.post(url, json=stateless("ping", {}), headers=stateless_headers("ping"))
            assert ping.status_code == 404 and ping.json()["error"]["code"] == -32601
            # initialize inside the envelope is a method 2026-07-28 lacks, not a handshake.
            init = stateless("initialize", {"protocolVersion": "2026-07-28", "capabilities": {}})
            refused = await client.post(url, json=init, headers=stateless_headers("initialize"))
            assert refused.status_code == 404 and refused.json()["error"]["code"] == -32601
            assert "mcp-session-id" not in refused.headers


async def test_stateless_tool_calls_must_mirror_x_mcp_header_arguments() -> None:
    with trio.fail_after(20):
        async with served() as url, httpx2.AsyncClient() as client:
            body = stateless(
                "tools/call", {"name": "regional", "arguments": {"region": "Hello", "query": "q"}}
            )
            headers = stateless_headers("tools/call", "regional")
            for header, ok in [
                (None, False),
                ("=?base64?SGVsbG8=?=", True),
                ("=?base64?SGVsbG8?=", False),
                ("Hello", True),
                ("Bye", False),
            ]:
                sent = headers if header is None else {**headers, "mcp-param-region": header}
                response = await client.post(url, json=body, headers=sent)
                if ok:
                    assert response.status_code == 200
                    assert response.json()["result"]["content"][0]["text"] == "q in Hello"
                else:
                    assert response.status_code == 400 and response.json()["error"]["code"] == -32020


async def test_stateless_state_access_is_an_error_not_a_crash() -> None:
    with trio.fail_after(20):
        async with served() as url, httpx2.AsyncClient() as client:
            body = stateless("tools/call", {"name": "counter", "arguments": {}})
            response = await client.post(url, json=body, headers=stateless_headers("tools/call", "counter"))
            assert response.status_code == 200
            payload = response.json()
            assert "error" in payload or payload["result"].get("isError") is True


async def test_hypercorn_still_serves_the_sdk_client() -> None:
    """``serve_http(server="hypercorn")``: the other HTTP server (HTTP/2, TLS) runs the same app."""
    with trio.fail_after(20):
        async with served(server="hypercorn") as url, sdk_session(url) as session:
            assert structured(await session.call_tool("add", {"a": 2, "b": 3})) == 5
            assert [structured(await session.call_tool("counter")) for _ in range(2)] == [1, 2]
