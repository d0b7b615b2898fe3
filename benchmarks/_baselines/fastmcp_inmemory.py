"""The FastMCP in-memory side of benchmarks/server.py: run with the FastMCP venv's Python, prints JSON.

FastMCP's ``Client`` runs under asyncio only, so this is its own process. The server is the one in
``fastmcp_server.py`` (``add``, ``counter``). Modes, mirroring what benchmarks/server.py measures on ours:

- ``calls``: for each tool of ``--tools`` and each K of ``--sessions`` (comma-separated lists; one JSON
  entry ``"tool/K"`` each, a fresh server each time): K ``Client(mcp, mode="legacy")`` instances, each
  an in-memory MCP session (FastMCP's ``FastMCPTransport`` over memory streams) in the 2025-11-25
  handshake era, where session state lives across requests as it does over HTTP (the default
  ``mode="auto"`` picks 2026-07-28, whose ``session_id`` is per request, so ``counter`` would never see
  its state); all opened first, then ``client.call_tool(tool, args)`` concurrently; ``--warmup`` calls,
  then ``--rounds`` timed rounds of ``--calls`` calls in all. Per round: calls/s, p50 and p99 latency;
  the JSON holds each round and the medians. With ``--count N`` the ``sessions`` figure comes too.
- ``sessions``: per round, ``--count`` times ``async with Client(mcp, mode="legacy"): pass`` (open,
  initialize, close).
- ``rss``: RSS growth for ``--count`` idle server-side sessions. Each is what FastMCP's in-memory
  transport starts for a client: the low-level server's ``run`` on its own pair of memory streams, in one
  task group, inside one server lifespan. A bare client end sends ``initialize`` and
  ``notifications/initialized`` as raw JSON-RPC messages and reads the answer, so no ``ClientSession``
  object is counted; then the session sits idle. Measured with ``/proc/self/statm`` after ``gc.collect()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import time
from typing import Any

from fastmcp import Client
from fastmcp_server import build_server as build_fastmcp

SERVER = "fastmcp"  # or "mcpserver" (--server): which peer's server is driven
CLIENT = "own"  # or "sdk" (--client): FastMCP's Client, or the SDK's bare ClientSession


def build_server() -> Any:
    if SERVER == "mcpserver":
        from sdk_server import build_server as build_mcpserver

        return build_mcpserver()
    return build_fastmcp()


class SdkClient:
    """The official SDK's ``ClientSession`` on the peer's in-memory transport (``FastMCPTransport``, which
    runs FastMCP's or MCPServer's low-level server on a pair of memory streams): the same client library,
    version and calls as ours in benchmarks/server.py's ``sdk_client``, so the servers are compared
    under one client."""

    def __init__(self, server: Any) -> None:
        from fastmcp.client.transports import FastMCPTransport

        self._cm = FastMCPTransport(server).connect_session()
        self.session: Any = None

    async def __aenter__(self) -> SdkClient:
        self.session = await self._cm.__aenter__()
        await self.session.initialize()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._cm.__aexit__(*exc)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        result = await self.session.call_tool(name, arguments)
        if result.is_error:
            raise RuntimeError(f"{name} answered {result}")
        return result

    @staticmethod
    def value(result: Any) -> Any:
        return int(result.content[0].text)


def open_client(mcp: Any) -> Any:
    if CLIENT == "sdk":
        return SdkClient(mcp)
    return Client(mcp, mode="legacy")


def value_of(result: Any) -> Any:
    return SdkClient.value(result) if CLIENT == "sdk" else result.data


PROTOCOL_VERSION = "2025-11-25"


def summary(latencies: list[float], calls: int, wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "per_s": calls / wall,
        "p50_s": ordered[len(ordered) // 2],
        "p99_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def medians(rounds: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    out["rounds"] = rounds
    return out


def tool_args(tool: str, i: int) -> dict[str, Any]:
    return {"a": i, "b": 1} if tool == "add" else {}


async def run_calls(tool: str, n_sessions: int, calls: int, warmup: int, rounds: int) -> Any:
    mcp = build_server()
    per_session = max(1, calls // n_sessions)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(open_client(mcp)) for _ in range(n_sessions)]

        async def drive(c: Any, n: int, latencies: list[float] | None) -> None:
            for i in range(n):
                t0 = time.perf_counter()
                result = await c.call_tool(tool, tool_args(tool, i))
                if latencies is not None:
                    latencies.append(time.perf_counter() - t0)
                if i == 0 and tool == "add" and value_of(result) != 1:
                    raise RuntimeError(f"add(0, 1) answered {result}")

        await asyncio.gather(*(drive(c, max(1, warmup // n_sessions), None) for c in clients))
        results = []
        for _ in range(rounds):
            latencies: list[float] = []
            t0 = time.perf_counter()
            await asyncio.gather(*(drive(c, per_session, latencies) for c in clients))
            results.append(summary(latencies, per_session * n_sessions, time.perf_counter() - t0))
        if tool == "counter":
            last = value_of(await clients[0].call_tool("counter", {}))
            expected = max(1, warmup // n_sessions) + per_session * rounds + 1
            if last != expected:
                raise RuntimeError(f"counter: expected {expected}, got {last}")
    return {"tool": tool, "sessions": n_sessions, "calls": per_session * n_sessions, **medians(results)}


async def run_sessions(count: int, warmup: int, rounds: int) -> Any:
    mcp = build_server()
    for _ in range(warmup):
        async with open_client(mcp):
            pass
    results = []
    for _ in range(rounds):
        latencies = []
        t0 = time.perf_counter()
        for _ in range(count):
            t1 = time.perf_counter()
            async with open_client(mcp):
                pass
            latencies.append(time.perf_counter() - t1)
        results.append(summary(latencies, count, time.perf_counter() - t0))
    return {"count": count, **medians(results)}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def run_rss(count: int) -> Any:
    import anyio
    from mcp.shared.memory import create_client_server_memory_streams
    from mcp.shared.message import SessionMessage
    from mcp_types import JSONRPCNotification, JSONRPCRequest

    mcp = build_server()
    lowlevel = mcp._lowlevel_server if SERVER == "mcpserver" else mcp._mcp_server
    options = lowlevel.create_initialization_options()
    init_params = {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "rss", "version": "0"},
    }

    async with contextlib.AsyncExitStack() as stack:
        if SERVER == "fastmcp":
            await stack.enter_async_context(mcp._lifespan_manager())
        tg = await stack.enter_async_context(anyio.create_task_group())

        async def open_one() -> None:
            client_streams, server_streams = await stack.enter_async_context(
                create_client_server_memory_streams()
            )
            client_read, client_write = client_streams
            tg.start_soon(lowlevel.run, server_streams[0], server_streams[1], options)
            request = JSONRPCRequest(jsonrpc="2.0", id=1, method="initialize", params=init_params)
            await client_write.send(SessionMessage(request))
            answer = await client_read.receive()
            assert isinstance(answer, SessionMessage), answer
            note = JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")
            await client_write.send(SessionMessage(note))

        await open_one()
        await asyncio.sleep(0.05)
        gc.collect()
        before = rss_bytes()
        for _ in range(count):
            await open_one()
        await asyncio.sleep(0.2)
        gc.collect()
        after = rss_bytes()
        tg.cancel_scope.cancel()
    return {
        "sessions": count,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_session": (after - before) / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["calls", "sessions", "rss"])
    parser.add_argument("--tools", default="add,counter")
    parser.add_argument("--sessions", default="1,20")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--count", type=int, default=0, help="sessions/rss: how many; calls: also time")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=["fastmcp", "mcpserver"], default="fastmcp")
    parser.add_argument("--client", choices=["own", "sdk"], default="own")
    args = parser.parse_args()
    global SERVER, CLIENT
    SERVER, CLIENT = args.server, args.client
    if SERVER == "mcpserver" and CLIENT == "own" and args.mode != "rss":
        parser.error("MCPServer is measured with the SDK ClientSession only (--client sdk)")
    if args.mode == "calls":
        out = {}
        for tool in args.tools.split(","):
            for k in map(int, args.sessions.split(",")):
                out[f"{tool}/{k}"] = asyncio.run(run_calls(tool, k, args.calls, args.warmup, args.rounds))
        if args.count:
            out["sessions"] = asyncio.run(run_sessions(args.count, min(args.warmup, 20), args.rounds))
    elif args.mode == "sessions":
        out = asyncio.run(run_sessions(args.count, min(args.warmup, 20), args.rounds))
    else:
        out = asyncio.run(run_rss(args.count))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
