"""``subscriptions/listen`` (2026-07-28): list changes and resource updates for session-less clients.

Judged first by the official SDK client (``Client(url, mode="2026-07-28").listen(...)``), then by raw
HTTP and stdio for what the client library hides: the acknowledgement is the first message, every message
carries the subscription id, nothing unrequested is sent, the client's close ends the stream, and a
server stop ends it with a final result.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
import trio
import trio.testing
from _fake_port import FakePort
from _http_messages import stateless, stateless_headers
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged
from mcpvisor.runtime.protocol import Message, Notification, Request, Response
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import mcp_asgi_app, serve_http
from mcpvisor.runtime.transports.stdio import serve_stdio

SSE_TOO = {"accept": "application/json, text/event-stream"}


def make_server() -> Server:
    server = Server("listen")
    notes = {"today": "nothing yet"}

    @server.resource("note://today")
    async def today() -> str:
        return notes["today"]

    @server.tool
    async def write(text: str) -> str:
        notes["today"] = text
        server.notify_resource_updated("note://today")
        return "saved"

    @server.tool
    async def grow() -> str:
        @server.tool(name="extra")
        async def extra() -> str:
            return "extra"

        return "grown"

    return server


@asynccontextmanager
async def served(server: Server, **http_options: Any) -> AsyncIterator[tuple[Any, str]]:
    async with start_server(server) as running, trio.open_nursery() as nursery:
        serve = functools.partial(serve_http, running, port_number=0, **http_options)
        bound = await nursery.start(serve)
        yield running, f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


def listen_body(request_id: int, **notifications: Any) -> dict[str, Any]:
    body = stateless("subscriptions/listen", {"notifications": notifications})
    body["id"] = request_id
    return body


def listen_headers() -> dict[str, str]:
    return {**stateless_headers("subscriptions/listen"), **SSE_TOO}


async def until(condition: Any) -> None:
    """Wait (bounded) for something the server does after a socket event we cannot await."""
    with trio.fail_after(5):
        while not condition():  # noqa: ASYNC110 (no event to wait on across the socket)
            await trio.sleep(0.01)


async def sse_messages(response: Any) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.startswith("data: ") and line != "data: ":
            yield json.loads(line[len("data: ") :])


async def test_the_sdk_client_hears_tool_changes_and_resource_updates() -> None:
    server = make_server()
    with trio.fail_after(20):
        async with served(server) as (running, url), Client(url) as client:
            assert client.protocol_version == "2026-07-28"  # found by server/discover
            caps = client.server_capabilities
            assert caps.tools is not None and caps.tools.list_changed is True
            assert caps.resources is not None and caps.resources.subscribe is True
            async with client.listen(tools_list_changed=True, resource_subscriptions=["note://today"]) as sub:
                assert sub.honored.tools_list_changed is True
                assert sub.honored.resource_subscriptions == ["note://today"]
                await client.call_tool("write", {"text": "milk"})
                await client.call_tool("grow", {})
                events = []
                async for event in sub:
                    events.append(event)
                    if len(events) == 2:
                        break
            assert events == [ResourceUpdated(uri="note://today"), ToolsListChanged()]
            assert "extra" in {tool.name for tool in (await client.list_tools()).tools}
            await until(lambda: not running.listeners.ids())  # leaving listen() ended it here too


async def test_ack_first_then_only_what_was_asked_for_each_stamped() -> None:
    server = make_server()
    with trio.fail_after(20):
        async with served(server) as (_, url), httpx2.AsyncClient() as client:
            body = listen_body(7, resourceSubscriptions=["note://today"], promptsListChanged=False)
            async with client.stream("POST", url, json=body, headers=listen_headers()) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                messages = sse_messages(response)
                ack = await anext(messages)
                assert ack["method"] == "notifications/subscriptions/acknowledged"
                assert ack["params"] == {
                    "_meta": {"io.modelcontextprotocol/subscriptionId": 7},
                    "notifications": {"resourceSubscriptions": ["note://today"]},  # false flags left out
                }
                server.notify_resource_updated("note://other")  # not subscribed
                await server_call(client, url, "grow")  # tools list_changed: not asked for
                server.notify_resource_updated("note://today")
                update = await anext(messages)
                assert update == {
                    "jsonrpc": "2.0",
                    "method": "notifications/resources/updated",
                    "params": {"uri": "note://today", "_meta": {"io.modelcontextprotocol/subscriptionId": 7}},
                }


async def server_call(client: httpx2.AsyncClient, url: str, tool: str) -> None:
    body = stateless("tools/call", {"name": tool, "arguments": {}})
    answer = await client.post(url, json=body, headers=stateless_headers("tools/call", tool))
    assert answer.status_code == 200, answer.text


async def test_a_server_stop_ends_the_stream_with_a_final_result() -> None:
    server = make_server()
    received: list[dict[str, Any]] = []
    with trio.fail_after(20):
        async with httpx2.AsyncClient() as client, served(server) as (running, url):
            async with trio.open_nursery() as nursery:

                async def listen() -> None:
                    body = listen_body(3, toolsListChanged=True)
                    async with client.stream("POST", url, json=body, headers=listen_headers()) as response:
                        async for message in sse_messages(response):
                            received.append(message)

                nursery.start_soon(listen)
                await until(running.listeners.ids)
                await running.end_listens()  # what server.run() does first when it is stopped
            assert running.listeners.ids() == []
    assert received[0]["method"] == "notifications/subscriptions/acknowledged"
    assert received[-1]["id"] == 3 and received[-1]["result"]["resultType"] == "complete"
    assert received[-1]["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 3


async def test_listen_needs_an_sse_accept_and_a_filter() -> None:
    with trio.fail_after(20):
        async with (
            served(make_server(), json_response=True) as (_, url),
            httpx2.AsyncClient() as client,
        ):
            json_only = {**listen_headers(), "accept": "application/json"}
            refused = await client.post(url, json=listen_body(1, toolsListChanged=True), headers=json_only)
            assert refused.status_code == 406 and refused.json()["id"] == 1
            no_filter = stateless("subscriptions/listen", {})
            bad = await client.post(url, json=no_filter, headers=listen_headers())
            assert bad.status_code == 400 and bad.json()["error"]["code"] == -32602
            # in JSON-response mode a listen still streams: its answer is a stream
            body = listen_body(2, toolsListChanged=True)
            async with client.stream("POST", url, json=body, headers=listen_headers()) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                ack = await anext(sse_messages(response))
                assert ack["method"] == "notifications/subscriptions/acknowledged"


async def test_listen_over_stdio_is_cancelled_by_notifications_cancelled() -> None:
    server = make_server()
    stdin_send, stdin_receive = trio.testing.memory_stream_one_way_pair()
    stdout_send, stdout_receive = trio.testing.memory_stream_one_way_pair()
    buffer = b""

    async def send(message: dict[str, Any]) -> None:
        await stdin_send.send_all(json.dumps(message).encode() + b"\n")

    async def next_message() -> dict[str, Any]:
        nonlocal buffer
        while b"\n" not in buffer:
            buffer += await stdout_receive.receive_some()
        line, buffer = buffer.split(b"\n", 1)
        return dict(json.loads(line))

    with trio.fail_after(10):
        async with start_server(server) as running, trio.open_nursery() as nursery:
            nursery.start_soon(
                functools.partial(serve_stdio, running, stdin=stdin_receive, stdout=stdout_send)
            )
            await send(listen_body(5, toolsListChanged=True))
            assert (await next_message())["method"] == "notifications/subscriptions/acknowledged"
            await send({**stateless("tools/call", {"name": "grow", "arguments": {}}), "id": 6})
            changed, answer = await next_message(), await next_message()
            if "id" in changed:  # the answer and the notification race: order them
                changed, answer = answer, changed
            assert changed["method"] == "notifications/tools/list_changed"
            assert changed["params"]["_meta"] == {"io.modelcontextprotocol/subscriptionId": 5}
            assert answer["id"] == 6
            await send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}})
            await until(lambda: not running.listeners.ids())
            await stdin_send.aclose()


async def test_stopping_the_server_answers_open_listens_with_their_result() -> None:
    send, receive = trio.open_memory_channel[Message](math.inf)
    params = listen_body(4, toolsListChanged=True)["params"]
    async with start_server(make_server()) as running:
        await running.submit(None, Request(4, "subscriptions/listen", params), send)
        await until(running.listeners.ids)
    messages = [m async for m in receive]
    assert isinstance(messages[0], Notification) and messages[0].method.endswith("/acknowledged")
    assert isinstance(messages[-1], Response) and messages[-1].id == 4  # a result, not "shutting down"
    assert messages[-1].result["_meta"]["io.modelcontextprotocol/subscriptionId"] == 4


async def test_an_idle_stream_gets_keepalive_comments() -> None:
    with trio.fail_after(20):
        async with served(make_server(), keepalive=0.05) as (_, url), httpx2.AsyncClient() as client:
            body = listen_body(8, toolsListChanged=True)
            async with client.stream("POST", url, json=body, headers=listen_headers()) as response:
                lines = response.aiter_lines()
                assert (await anext(lines)).startswith("data: ")  # the acknowledgement
                comments = 0
                async for line in lines:
                    assert not line.startswith("data: ")  # nothing happened: only comments
                    comments += line.startswith(":")
                    if comments == 3:
                        break


def test_keepalive_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keepalive must be > 0"):
        mcp_asgi_app(FakePort, keepalive=0)  # type: ignore[arg-type]
