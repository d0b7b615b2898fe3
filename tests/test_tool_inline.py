"""``@server.tool(inline=True)``: a sync tool called on the event loop instead of a worker thread."""

from __future__ import annotations

import threading

import pytest
from mcpvisor.runtime.server import Context, Server, start_server
from mcpvisor.runtime.transports.memory import open_memory_client


def build() -> Server:
    server = Server("inline")

    @server.tool(inline=True)
    def where_inline() -> str:
        """The thread this runs in."""
        return threading.current_thread().name

    @server.tool
    def where_default() -> str:
        """The thread this runs in."""
        return threading.current_thread().name

    @server.tool(inline=True)
    def fails() -> int:
        """Raises."""
        raise ValueError("secret detail")

    return server


async def test_inline_runs_on_the_event_loop_and_default_in_a_worker() -> None:
    loop_thread = threading.current_thread().name
    async with start_server(build()) as port, open_memory_client(port) as client:
        inline = await client.call_tool("where_inline")
        default = await client.call_tool("where_default")
    assert inline["content"][0]["text"] == loop_thread
    assert default["content"][0]["text"] != loop_thread


async def test_an_inline_tool_failure_is_answered_like_any_other() -> None:
    async with start_server(build()) as port, open_memory_client(port) as client:
        with pytest.raises(Exception) as raised:
            await client.call_tool("fails")
    assert "secret detail" not in str(raised.value)


def test_inline_is_refused_on_an_async_tool() -> None:
    server = Server("x")

    async def tool(ctx: Context) -> int:
        return 1

    with pytest.raises(TypeError, match="inline=True is for sync functions"):
        server.tool(inline=True)(tool)
