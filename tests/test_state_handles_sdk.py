"""The official SDK's default client (``mcp.Client(target)``, which negotiates 2026-07-28) keeps state
with the demo server through a state handle: over HTTP and stdio, across a crash of the handle's actor,
a kill -9 and restart on SQLite, and two nodes on one Redis. ``mode="legacy"`` and a server serving
2025-11-25 only tell the same story through the session."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from _demo_process import ROOT
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import Implementation
from mcpvisor.backends import RedisSessionStore, SessionStateStore
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.server.demo import server as demo
from mcpvisor.runtime.transports.http import serve_http
from test_session_resume_process import demo_process, free_port


def said(result: Any) -> tuple[int, str]:
    """(count, owner) from the demo counter's answer: ``count = N (handle sh_...)``."""
    assert not result.is_error, result
    text: str = result.content[0].text
    count, owner = text.removeprefix("count = ").split(" ", 1)
    return int(count), owner.strip("()")


@asynccontextmanager
async def served(store: str | SessionStateStore = "memory://", **options: Any) -> AsyncIterator[str]:
    async with (
        start_server(demo, session_state_store=store, **options) as port,
        trio.open_nursery() as nursery,
    ):
        bound = await nursery.start(functools.partial(serve_http, port, port_number=0))
        yield f"http://127.0.0.1:{bound}/mcp"
        nursery.cancel_scope.cancel()


async def the_story(client: Client, era: str) -> str:
    """counter, counter, crash, counter: 1, 2, (an error), 3, all on one owner; returns the owner."""
    assert client.protocol_version == era
    count, owner = said(await client.call_tool("counter", {}))
    assert count == 1
    kind, name = owner.split(" ")
    arguments = {"handle": name} if kind == "handle" else {}
    assert kind == ("handle" if era == "2026-07-28" else "session")
    assert said(await client.call_tool("counter", arguments)) == (2, owner)
    with pytest.raises(Exception, match=r"crashed .*restarted under the same"):
        await client.call_tool("crash", arguments)
    assert said(await client.call_tool("counter", arguments)) == (3, owner)
    return name


async def test_the_default_client_over_http_counts_through_a_handle_across_a_crash() -> None:
    with trio.fail_after(30):
        async with served() as url, Client(url) as client:
            await the_story(client, "2026-07-28")


async def test_the_legacy_client_over_http_counts_through_its_session() -> None:
    with trio.fail_after(30):
        async with served() as url, Client(url, mode="legacy") as client:
            await the_story(client, "2025-11-25")


async def test_the_default_client_falls_back_to_the_session_when_the_server_serves_2025_11_25_only() -> None:
    with trio.fail_after(30):
        async with served(protocol="2025-11-25") as url, Client(url) as client:
            await the_story(client, "2025-11-25")


async def test_the_default_client_over_stdio_counts_through_a_handle_across_a_crash(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcpvisor", "demo", "--transport", "stdio"], cwd=str(ROOT)
    )
    with trio.fail_after(30):
        async with Client(params) as client:
            handle = await the_story(client, "2026-07-28")
    assert handle.startswith("sh_")


async def test_the_default_client_keeps_its_handle_across_a_kill_9_on_sqlite(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "state.db"
    url = f"http://127.0.0.1:{port}/mcp"
    with trio.fail_after(60):
        with demo_process(port, db) as first:
            async with Client(url) as client:
                first_count, owner = said(await client.call_tool("counter", {}))
                assert first_count == 1
                handle = owner.removeprefix("handle ")
                assert said(await client.call_tool("counter", {"handle": handle})) == (2, owner)
                os.kill(first.pid, signal.SIGKILL)  # no shutdown, no flush: only what was acknowledged
                await trio.to_thread.run_sync(first.wait)
                with demo_process(port, db) as second:
                    # the same client, a new process: the handle is all either needs
                    assert said(await client.call_tool("counter", {"handle": handle})) == (3, owner)
                    with pytest.raises(Exception, match="crashed"):
                        await client.call_tool("crash", {"handle": handle})
                    assert said(await client.call_tool("counter", {"handle": handle})) == (4, owner)
                    assert second.poll() is None


async def test_two_nodes_on_one_redis_count_through_one_handle(redis_server: str, redis_prefix: str) -> None:
    with trio.fail_after(30):
        async with (
            RedisSessionStore(redis_server, prefix=redis_prefix) as store_a,
            RedisSessionStore(redis_server, prefix=redis_prefix) as store_b,
            served(store_a) as node_a,
            served(store_b) as node_b,
            Client(node_a) as on_a,
            Client(node_b) as on_b,
        ):
            _, owner = said(await on_a.call_tool("counter", {}))
            handle = {"handle": owner.removeprefix("handle ")}
            assert said(await on_b.call_tool("counter", handle)) == (2, owner)
            with pytest.raises(Exception, match="crashed"):
                await on_b.call_tool("crash", handle)
            assert said(await on_a.call_tool("counter", handle)) == (3, owner)
            assert said(await on_b.call_tool("counter", handle)) == (4, owner)


async def test_another_client_is_refused_the_handle() -> None:
    with trio.fail_after(30):
        async with (
            served() as url,
            Client(url) as mine,
            Client(url, client_info=Implementation(name="someone-else", version="1")) as theirs,
        ):
            _, owner = said(await mine.call_tool("counter", {}))
            refused = await theirs.call_tool("counter", {"handle": owner.removeprefix("handle ")})
            assert refused.is_error and "belongs to another client" in refused.content[0].text  # type: ignore[union-attr]
