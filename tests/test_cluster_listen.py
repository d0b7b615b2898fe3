"""``subscriptions/listen`` streams (2026-07-28) across nodes on one Redis (issue 11).

The official SDK client in its default mode listens through node B while another client's tool call on
node A changes a resource and registers a tool: both notifications reach the listen stream on B, through
Redis, and a resource nobody asked for does not.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import trio
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged
from mcpvisor.backends import RedisSessionStore
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import serve_http


def make_server() -> Server:
    server = Server("listen-nodes")

    @server.resource("note://today")
    async def today() -> str:
        return "today"

    @server.tool
    async def touch(uri: str) -> str:
        server.notify_resource_updated(uri)
        return uri

    @server.tool
    async def grow() -> str:
        @server.tool(name="extra")
        async def extra() -> str:
            return "extra"

        return "grown"

    return server


@asynccontextmanager
async def node(url: str, prefix: str, name: str) -> AsyncIterator[str]:
    async with AsyncExitStack() as stack:
        store = RedisSessionStore(url, prefix=prefix)
        stack.push_async_callback(store.aclose)
        running = await stack.enter_async_context(
            start_server(make_server(), session_state_store=store, node_id=name)
        )
        nursery = await stack.enter_async_context(trio.open_nursery())
        bound = await nursery.start(functools.partial(serve_http, running, port_number=0))
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


async def test_a_listen_stream_on_one_node_hears_what_another_node_raises(
    redis_server: str, redis_prefix: str
) -> None:
    with trio.fail_after(30):
        async with (
            node(redis_server, redis_prefix, "a") as url_a,
            node(redis_server, redis_prefix, "b") as url_b,
            Client(url_a) as on_a,
            Client(url_b) as on_b,
        ):
            assert on_b.protocol_version == "2026-07-28"
            async with on_b.listen(tools_list_changed=True, resource_subscriptions=["note://today"]) as sub:
                await on_a.call_tool("touch", {"uri": "note://other"})  # nobody on b asked for it
                await on_a.call_tool("touch", {"uri": "note://today"})
                await on_a.call_tool("grow", {})
                events = []
                async for event in sub:
                    events.append(event)
                    if len(events) == 2:
                        break
            assert events == [ResourceUpdated(uri="note://today"), ToolsListChanged()]
