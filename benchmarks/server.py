"""Server benchmark (issues 4 and 14): our MCP server vs the same server written with FastMCP and with the
official SDK's ``MCPServer``, in one run.

    .venv/bin/python benchmarks/server.py                   # full run (4-6 minutes)
    .venv/bin/python benchmarks/server.py --quick           # smoke run, about a minute
    .venv/bin/python benchmarks/server.py --json-response   # HTTP with JSON answers on every server
    .venv/bin/python benchmarks/server.py --inline-add      # our add as @server.tool(inline=True)

The peers run in their own venv, ``benchmarks/.venv-fastmcp``, never in ours (they are no dependency of
mcpvisor): FastMCP 4.2.3 and the official SDK, mcp 2.3.0 (``from mcp.server.mcpserver import
MCPServer``), pinned in ``benchmarks/requirements-peers.txt``. The script creates the venv on first run
(or: ``python3 -m venv benchmarks/.venv-fastmcp && benchmarks/.venv-fastmcp/bin/pip install -r
benchmarks/requirements-peers.txt``).

The server, three times (ours here, ``_baselines/fastmcp_server.py``, ``_baselines/sdk_server.py``):
``add(a, b)`` (a trivial sync tool; every server runs it in a worker thread unless ``--inline-add``) and
``counter()`` (an async tool, a session-state read+write). Each figure is the median of 3 short rounds
after a warm-up; the sides take turns round by round (2 shared, noisy cores: only same-run ratios mean
much):

- over Streamable HTTP: every server in its own process on 127.0.0.1 (FastMCP's ``run(transport="http")``
  and MCPServer's ``streamable_http_app`` on uvicorn, access log off; ours ``Server.run(transport="http")``
  on our trio + h11 server), started and stopped by pid, driven by the SAME load generator
  (``_baselines/http_load.py``: asyncio + raw HTTP/1.1 keep-alive, one connection per session, the
  2025-11-25 handshake, SSE or JSON answers parsed alike); 1 and 20 sessions, calls/s, p50, p99, and the
  server process's CPU time per call (from /proc);
- the HTTP floor, in the same rounds: a trivial ASGI app faking the same exchange
  (``_baselines/asgi_floor.py``) on our own HTTP server (mcpvisor-h11), hypercorn-trio and uvicorn, and
  h11 on bare trio sockets (trio-h11): what each HTTP stack alone does, and the CPU per call of the
  leanest (ours should be within 1.5x of trio-h11's);
- in memory, the servers compared under ONE client: the official SDK's ``ClientSession`` (mcp 2.3.0 in
  both venvs) on each server's in-memory transport (ours: ``open_sdk_streams``; the peers': the SDK
  memory streams on their low-level server, ``_baselines/fastmcp_inmemory.py --client sdk``);
- in memory with each framework's own fastest in-process client: ours ``open_memory_client``, FastMCP's
  ``Client(mcp, mode="legacy")`` (MCPServer has no client of its own beyond ``ClientSession``);
- session open+initialize+close/s, over HTTP (initialize, notifications/initialized, DELETE) and in memory;
- RSS per idle session at 1,000 and 10,000 sessions, each count in a fresh process (ours: sessions made by
  ``open_memory_client(..., close=False)``; the peers': their low-level server's ``run`` per session on
  memory streams, driven by raw JSON-RPC), and the server's RSS growth while 1,000 HTTP sessions are held.

Every ratio printed is how many times better ours is (rates ours/peer, latencies and memory peer/ours);
'!' marks a row below its issue-14 target (HTTP: 3x FastMCP and 2x MCPServer on calls/s, p50 and p99;
in memory with the SDK client: 3x and 1.5x; own clients: 10x FastMCP's calls/s). Both peers cap HTTP
sessions at 10,000 by default; ours does too (``max_sessions``). Results go to
benchmarks/results/server.json (``-json``, ``-inline``, ``-quick`` suffixes for the options).

``--handles`` (issue 10) measures state handles against sessions instead, ours only, in the same run:
the stateful tool (a read+write of ``n``) through a state handle on 2026-07-28 (``hcounter(handle)``,
each client first opens its handle) against the same tool through the session on 2025-11-25
(``counter()``), both with our in-memory client, 1 and 20 clients; and the RSS growth per idle handle
at 10,000 handles (opened by ``open_counter`` over one 2026-07-28 client, each then used once), next to
the same figure per idle session, each count in a fresh process. Goal: <= 20 KB per idle handle, as for
a session. Not side by side with FastMCP yet: FastMCP 4's equivalent ("Session State" for 2026-07-28,
gofastmcp.com/servers/sessions) keys its buckets to the *authenticated* principal, so a like-for-like
baseline needs an authenticated FastMCP client in its own venv; that baseline is still to be written.
Results go to benchmarks/results/handles.json.

``--auth`` (issue 13) measures what authorization costs, ours only: ``tools/call`` over HTTP with a
JWT checked on every request (RS256, cached JWKS) against the same server without authentication,
rounds interleaved, printed as ratios; and ``verify_token`` alone. See ``_auth_bench.py``; results go
to benchmarks/results/auth.json.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import trio
from mcpvisor.runtime.server import Context, Server, StateHandle

HERE = Path(__file__).resolve().parent
BASELINES = HERE / "_baselines"
FASTMCP_VENV = HERE / ".venv-fastmcp"
#: the peers: FastMCP and the official SDK (mcp 2.3.0, ``MCPServer``), pinned in requirements-peers.txt
FASTMCP_PIN = "fastmcp==4.2.3"
PEERS_REQUIREMENTS = HERE / "requirements-peers.txt"
RESULTS = HERE / "results" / "server.json"
PROTOCOL_VERSION = "2025-11-25"
TOOLS = ("add", "counter")
CONCURRENCY = (1, 20)


_T0 = time.monotonic()


def progress(msg: str) -> None:
    print(f"[server +{time.monotonic() - _T0:3.0f}s] {msg}", file=sys.stderr, flush=True)


# ---- our server --------------------------------------------------------------------------------------


def build_server() -> Server:
    server = Server("bench")

    # ``--inline-add``: ``add`` on the event loop (``@server.tool(inline=True)``, for functions that never
    # block) instead of a worker thread, where both peers run their sync tools.
    @server.tool(inline=os.environ.get("MCPVISOR_BENCH_INLINE_ADD") == "1")
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool
    async def counter(ctx: Context) -> int:
        """Increment this session's counter and return it."""
        n: int = await ctx.get_state("n", 0) + 1
        await ctx.set_state("n", n)
        return n

    @server.tool
    async def open_counter(ctx: Context) -> str:
        """Open a state handle for hcounter."""
        return await ctx.open_handle()

    @server.tool
    async def hcounter(ctx: Context, handle: StateHandle) -> int:
        """Increment the handle's counter and return it (counter's body, through a handle)."""
        n: int = await ctx.get_state("n", 0) + 1
        await ctx.set_state("n", n)
        return n

    return server


@contextlib.asynccontextmanager
async def running_port(**options: Any) -> AsyncIterator[Any]:
    """Our server's runtime, started in this process: yields its ``ServerPort``."""
    from mcpvisor.runtime.server import start_server

    async with start_server(build_server(), **options) as port:
        yield port


@contextlib.asynccontextmanager
async def memory_client(port: Any, *, close: bool = True) -> AsyncIterator[Any]:
    """Our own in-memory client (``open_memory_client``), in the 2025-11-25 handshake era."""
    from mcpvisor.runtime.transports.memory import open_memory_client

    async with open_memory_client(port, protocol_version=PROTOCOL_VERSION, close=close) as client:
        yield client


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


class SdkClient:
    """The official ``mcp`` SDK's ``ClientSession`` on our in-memory SDK streams (``open_sdk_streams``):
    the client library FastMCP's ``Client`` wraps, so the two sides share a client. Our streams carry
    JSON text both ways (as a real transport does); FastMCP's in-memory streams pass pydantic objects."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.session.call_tool(name, arguments)
        return {
            "isError": result.is_error,
            "content": [{"text": getattr(c, "text", None)} for c in result.content],
        }


@contextlib.asynccontextmanager
async def sdk_client(port: Any) -> AsyncIterator[SdkClient]:
    from mcp import ClientSession
    from mcpvisor.runtime.transports.memory import open_sdk_streams

    async with open_sdk_streams(port) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield SdkClient(session)


async def ours_calls(
    tool: str, n_sessions: int, calls: int, warmup: int, rounds: int, client: str = "memory"
) -> dict[str, Any]:
    per_session = max(1, calls // n_sessions)
    open_client = memory_client if client == "memory" else sdk_client
    async with running_port() as port, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(open_client(port)) for _ in range(n_sessions)]

        async def drive(c: Any, n: int, latencies: list[float] | None) -> None:
            for i in range(n):
                t0 = time.perf_counter()
                result = await c.call_tool(tool, tool_args(tool, i))
                if latencies is not None:
                    latencies.append(time.perf_counter() - t0)
                if result.get("isError") or (
                    i == 0 and tool == "add" and result["content"][0]["text"] != "1"
                ):
                    raise RuntimeError(f"{tool} answered {result}")

        async def all_sessions(n: int, latencies: list[float] | None) -> None:
            async with trio.open_nursery() as nursery:
                for c in clients:
                    nursery.start_soon(drive, c, n, latencies)

        await all_sessions(max(1, warmup // n_sessions), None)
        results = []
        for _ in range(rounds):
            latencies: list[float] = []
            t0 = time.perf_counter()
            await all_sessions(per_session, latencies)
            results.append(summary(latencies, per_session * n_sessions, time.perf_counter() - t0))
        if tool == "counter":
            last = await clients[0].call_tool("counter", {})
            expected = max(1, warmup // n_sessions) + per_session * rounds + 1
            if last["content"][0]["text"] != str(expected):
                raise RuntimeError(f"counter: expected {expected}, got {last}")
    return {"tool": tool, "sessions": n_sessions, "calls": per_session * n_sessions, **medians(results)}


async def ours_sessions(count: int, warmup: int, rounds: int, client: str = "memory") -> dict[str, Any]:
    open_client = memory_client if client == "memory" else sdk_client
    async with running_port() as port:
        for _ in range(warmup):
            async with open_client(port):
                pass
        results = []
        for _ in range(rounds):
            latencies = []
            t0 = time.perf_counter()
            for _ in range(count):
                t1 = time.perf_counter()
                async with open_client(port):
                    pass
                latencies.append(time.perf_counter() - t1)
            results.append(summary(latencies, count, time.perf_counter() - t0))
    return {"count": count, **medians(results)}


def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def ours_rss(count: int) -> dict[str, Any]:
    """RSS growth for ``count`` idle sessions: each opened by a memory client that initializes it and
    leaves without closing it, so only the server side of the session stays."""
    import trio.testing

    # The default cap (10,000 sessions) would refuse the last of count + 1: raised for the measurement.
    async with running_port(max_sessions=count + 10) as port:
        async with memory_client(port, close=False) as first:
            await first.call_tool("add", {"a": 1, "b": 2})
        await trio.sleep(0.05)
        gc.collect()
        before = rss_bytes()
        for _ in range(count):
            async with memory_client(port, close=False) as client:
                pass
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.2)
        gc.collect()
        after = rss_bytes()
        if len(port.session_ids()) != count + 1 or not port.has_session(client.session_id):
            raise RuntimeError(f"expected {count + 1} live sessions, found {len(port.session_ids())}")
    return {
        "sessions": count,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_session": (after - before) / count,
    }


# ---- state handles (issue 10) -------------------------------------------------------------------------

MODERN = "2026-07-28"


async def ours_handle_calls(n_clients: int, calls: int, warmup: int, rounds: int) -> dict[str, Any]:
    """``hcounter`` through a state handle on 2026-07-28: each client opens its handle, then counts."""
    from mcpvisor.runtime.transports.memory import open_memory_client

    per_client = max(1, calls // n_clients)
    async with running_port() as port, contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(open_memory_client(port, protocol_version=MODERN))
            for _ in range(n_clients)
        ]
        handles = [(await c.call_tool("open_counter"))["content"][0]["text"] for c in clients]

        async def drive(c: Any, handle: str, n: int, latencies: list[float] | None) -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                result = await c.call_tool("hcounter", {"handle": handle})
                if latencies is not None:
                    latencies.append(time.perf_counter() - t0)
                if result.get("isError"):
                    raise RuntimeError(f"hcounter answered {result}")

        async def all_clients(n: int, latencies: list[float] | None) -> None:
            async with trio.open_nursery() as nursery:
                for c, handle in zip(clients, handles, strict=True):
                    nursery.start_soon(drive, c, handle, n, latencies)

        await all_clients(max(1, warmup // n_clients), None)
        results = []
        for _ in range(rounds):
            latencies: list[float] = []
            t0 = time.perf_counter()
            await all_clients(per_client, latencies)
            results.append(summary(latencies, per_client * n_clients, time.perf_counter() - t0))
        last = await clients[0].call_tool("hcounter", {"handle": handles[0]})
        expected = max(1, warmup // n_clients) + per_client * rounds + 1
        if last["structuredContent"]["result"] != expected:
            raise RuntimeError(f"hcounter: expected {expected}, got {last}")
    return {"tool": "hcounter", "clients": n_clients, "calls": per_client * n_clients, **medians(results)}


async def ours_handle_rss(count: int) -> dict[str, Any]:
    """RSS growth for ``count`` idle state handles, each opened and used once, then left alone."""
    import trio.testing
    from mcpvisor.runtime.transports.memory import open_memory_client

    async with running_port() as port, open_memory_client(port, protocol_version=MODERN) as client:
        first = (await client.call_tool("open_counter"))["content"][0]["text"]
        await client.call_tool("hcounter", {"handle": first})
        await trio.sleep(0.05)
        gc.collect()
        before = rss_bytes()
        for _ in range(count):
            handle = (await client.call_tool("open_counter"))["content"][0]["text"]
            await client.call_tool("hcounter", {"handle": handle})
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(0.2)
        gc.collect()
        after = rss_bytes()
        if len(port.handle_ids()) != count + 1:
            raise RuntimeError(f"expected {count + 1} live handles, found {len(port.handle_ids())}")
    return {
        "handles": count,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_handle": (after - before) / count,
    }


def handles_main(args: argparse.Namespace) -> None:
    """``--handles``: handles against sessions, each measurement in a fresh process, rounds interleaved."""
    me = [sys.executable, str(Path(__file__).resolve())]
    calls, warmup, rounds = (300, 50, 3) if args.quick else (2000, 200, 3)
    count = 1000 if args.quick else 10000
    started = time.perf_counter()
    out: dict[str, Any] = {"quick": args.quick, "calls": calls, "count": count}
    for k in CONCURRENCY:
        progress(f"stateful tool, {k} client(s): session (2025-11-25) vs handle (2026-07-28)")
        common = [
            "--sessions",
            str(k),
            "--calls",
            str(calls),
            "--warmup",
            str(warmup),
            "--rounds",
            str(rounds),
        ]
        session = run_json([*me, "--child", "calls", "--tools", "counter", *common], 600)
        handle = run_json([*me, "--child", "handle-calls", *common], 600)
        out[f"session/{k}"] = session[f"counter/{k}"]
        out[f"handle/{k}"] = handle
    progress(f"RSS: {count} idle sessions, then {count} idle handles (fresh processes)")
    out["rss_sessions"] = run_json([*me, "--child", "rss", "--count", str(count)], 900)
    out["rss_handles"] = run_json([*me, "--child", "handle-rss", "--count", str(count)], 900)
    print(f"{'stateful tool (in-memory)':44} {'session':>10} {'handle':>10} {'handle/session':>15}")
    for k in CONCURRENCY:
        s_, h_ = out[f"session/{k}"], out[f"handle/{k}"]
        print(
            f"{f'calls/s, {k} client(s)':44} {s_['per_s']:10.0f} {h_['per_s']:10.0f} "
            f"{h_['per_s'] / s_['per_s']:15.2f}"
        )
        print(
            f"{f'p50 latency us, {k} client(s)':44} {s_['p50_s'] * 1e6:10.0f} {h_['p50_s'] * 1e6:10.0f} "
            f"{h_['p50_s'] / s_['p50_s']:15.2f}"
        )
    per_session = out["rss_sessions"]["bytes_per_session"]
    per_handle = out["rss_handles"]["bytes_per_handle"]
    print(f"{f'RSS per idle one at {count:,} (KB)':44} {per_session / 1024:10.1f} {per_handle / 1024:10.1f}")
    out["target_handle_rss_met"] = per_handle <= 20 * 1024
    out["seconds"] = time.perf_counter() - started
    out["machine"] = {"python": platform.python_version(), "trio": trio.__version__, **source_state()}
    progress(f"done in {out['seconds']:.0f} s; <= 20 KB per idle handle: {out['target_handle_rss_met']}")
    if not args.no_write:
        name = RESULTS.with_name("handles" + "-quick" * args.quick + ".json")
        name.parent.mkdir(exist_ok=True)
        name.write_text(json.dumps(out, indent=2) + "\n")
        progress(f"wrote {name.relative_to(HERE.parent)}")


def auth_main(args: argparse.Namespace) -> None:
    """``--auth`` (issue 13): the cost of verifying a JWT per request (``_auth_bench.py``)."""
    sys.path.insert(0, str(HERE))
    import _auth_bench

    started = time.perf_counter()
    progress("tools/call over HTTP: no auth vs a JWT on every request (rounds interleaved)")
    out = trio.run(_auth_bench.measure, args.quick)
    _auth_bench.report(out)
    out["seconds"] = time.perf_counter() - started
    out["machine"] = {"python": platform.python_version(), "trio": trio.__version__, **source_state()}
    if not args.no_write:
        name = RESULTS.with_name("auth" + "-quick" * args.quick + ".json")
        name.parent.mkdir(exist_ok=True)
        name.write_text(json.dumps(out, indent=2) + "\n")
        progress(f"wrote {name.relative_to(HERE.parent)}")


def serve_ours_http(port_number: int, json_response: bool) -> None:
    """Child process: our server on Streamable HTTP, as a user runs it (``Server.run``), until terminated.

    ``Server.run`` has no JSON-response option: with ``json_response`` (and until ``Server.run`` can serve
    HTTP) the same thing by hand, ``start_server`` + ``serve_http``.
    """
    import importlib.util

    if not json_response and importlib.util.find_spec("mcpvisor.runtime.transports._run") is not None:
        build_server().run(transport="http", host="127.0.0.1", port=port_number)
        return
    from mcpvisor.runtime.transports.http import serve_http

    async def serve() -> None:
        async with running_port() as port:
            await serve_http(port, host="127.0.0.1", port_number=port_number, json_response=json_response)

    trio.run(serve)


def child_main(args: argparse.Namespace) -> None:
    """``--child MODE``: one of our in-memory measurements in a fresh process; prints JSON."""
    if args.child == "calls":
        out: dict[str, Any] = {}
        for tool in args.tools.split(","):
            for k in map(int, args.sessions.split(",")):
                out[f"{tool}/{k}"] = trio.run(
                    ours_calls, tool, k, args.calls, args.warmup, args.rounds, args.client
                )
        if args.count:
            out["sessions"] = trio.run(
                ours_sessions, args.count, min(args.warmup, 20), args.rounds, args.client
            )
    elif args.child == "sessions":
        out = trio.run(ours_sessions, args.count, min(args.warmup, 20), args.rounds)
    elif args.child == "handle-calls":
        out = trio.run(ours_handle_calls, int(args.sessions), args.calls, args.warmup, args.rounds)
    elif args.child == "handle-rss":
        out = trio.run(ours_handle_rss, args.count)
    else:
        out = trio.run(ours_rss, args.count)
    print(json.dumps(out))


def ours_available() -> str | None:
    """None when our server runtime can be benchmarked, else why not (it is being written)."""
    try:
        from mcpvisor.runtime import server
    except ImportError as exc:
        return f"mcpvisor.runtime.server does not import: {exc}"
    missing = [name for name in ("Server", "Context", "start_server") if not hasattr(server, name)]
    return f"mcpvisor.runtime.server has no {', '.join(missing)} yet" if missing else None


# ---- processes ---------------------------------------------------------------------------------------


def source_state() -> dict[str, Any]:
    """The commit measured, and whether the runtime's sources differed from it (a shared work tree)."""

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True)
        return out.stdout.strip()

    changed = git("status", "--porcelain", "--", "runtime", "supervisors", "backends", "mcpvisor")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_runtime_files": len(changed.splitlines()),
    }


def ensure_fastmcp_venv() -> Path | None:
    python = FASTMCP_VENV / "bin" / "python"
    if python.exists():
        found = subprocess.run(
            [str(python), "-c", "import fastmcp; print(fastmcp.__version__)"], capture_output=True, text=True
        ).stdout.strip()
        if f"fastmcp=={found}" == FASTMCP_PIN:
            return python
        venv = FASTMCP_VENV.relative_to(HERE.parent)
        progress(f"{venv} has fastmcp {found or 'none'}: installing {FASTMCP_PIN}")
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(PEERS_REQUIREMENTS)], check=False)
        return python
    progress(f"creating {FASTMCP_VENV.relative_to(HERE.parent)} with {FASTMCP_PIN}")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(FASTMCP_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        if subprocess.run([*pip, "-r", str(PEERS_REQUIREMENTS)]).returncode != 0:
            progress(f"{FASTMCP_PIN} did not install: trying the latest fastmcp 4.x")
            subprocess.run([*pip, "fastmcp>=4,<5"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        progress(f"could not create the FastMCP venv ({exc}): FastMCP side skipped")
        return None
    return python


def run_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_json_parallel(
    jobs: dict[tuple[str, str], list[str]], timeout: float
) -> dict[tuple[str, str], dict[str, Any]]:
    procs = {
        key: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for key, cmd in jobs.items()
    }
    results: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for key, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(jobs[key][:4])} ... failed:\n{err[-3000:]}")
            results[key] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """A server on 127.0.0.1 in its own process, started here and stopped by its pid."""

    def __init__(self, name: str, cmd: Callable[[int], list[str]]) -> None:
        self.name = name
        self.port = free_port()
        self.log = open(f"/tmp/mcpvisor-bench-{name}-{self.port}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd(self.port), stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{self.name} server exited: {self.log.read()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not listen on {self.port} within {timeout:.0f} s")

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def cpu(self) -> float:
        """The server process's CPU time so far (user + system), in seconds."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run_load(self, cmd: list[str], timeout: float) -> dict[str, Any]:
        """One load-generator run against this server, with the server's CPU time per call (warm-up
        included; the same for every server)."""
        before = self.cpu()
        out = run_json(cmd, timeout)
        spent = self.cpu() - before
        calls = int(cmd[cmd.index("--calls") + 1]) + int(cmd[cmd.index("--warmup") + 1])
        for r in out["rounds"]:
            r["cpu_per_call_s"] = spent / calls
        out["cpu_per_call_s"] = spent / calls
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def held_rss(python: Path, server: ServerProcess, count: int) -> dict[str, Any]:
    """Server-process RSS growth while ``count`` sessions opened over HTTP are held (connections closed)."""
    time.sleep(0.5)
    before = server.rss()
    holder = subprocess.Popen(
        [str(python), str(BASELINES / "http_load.py"), "hold", "--url", server.url, "--count", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        line = holder.stdout.readline()
        if not line:
            raise RuntimeError(f"the hold client for {server.name} failed")
        time.sleep(1.0)
        after = server.rss()
        holder.stdin.write("done\n")
        holder.stdin.flush()
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    return {
        "sessions": count,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_session": (after - before) / count,
    }


# ---- the run -----------------------------------------------------------------------------------------


def merge_rounds(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from several single-round runs: every round kept, medians over them."""
    rounds = [r for part in parts for r in part["rounds"]]
    merged = {**{k: v for k, v in parts[0].items() if k != "rounds"}, **medians(rounds)}
    return merged


PEERS = ("fastmcp", "mcpserver")
PEER_NAMES = {"fastmcp": "FastMCP", "mcpserver": "MCPServer"}


def measure(python: Path | None, sizes: dict[str, Any], ours_ok: bool) -> dict[str, Any]:
    """Every figure, as the median of ``sizes["rounds"]`` rounds; the sides take turns round by round
    (the machine's load drifts over seconds, so a figure and its counterparts are measured close in time)."""
    sides: dict[str, dict[str, Any]] = {"fastmcp": {}, "mcpserver": {}, "ours": {}}
    me = [sys.executable, str(Path(__file__).resolve())]
    inmem = str(BASELINES / "fastmcp_inmemory.py")
    lists = ["--tools", ",".join(TOOLS), "--sessions", ",".join(map(str, CONCURRENCY))]
    one_round = ["--calls", str(sizes["calls"]), "--warmup", str(sizes["warmup"]), "--rounds", "1"]
    n_rounds = sizes["rounds"]
    timeout = 300
    parts: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def keep(side: str, key: str, out: dict[str, Any]) -> None:
        parts.setdefault((side, key), []).append(out)

    # In-memory: each side in its own process; one process per side, client and round. Two comparisons:
    # each framework's own fastest in-process client (ours: ``open_memory_client``; FastMCP: its
    # ``Client``), and the official SDK's ``ClientSession`` driving every server (the same client
    # library and version: mcp 2.3.0 in both venvs), which compares the servers alone.
    commands: dict[tuple[str, str], list[str]] = {}
    if python is not None:
        commands[("fastmcp", "")] = [str(python), inmem, "--server", "fastmcp", "--client", "own"]
        commands[("fastmcp", "sdk/")] = [str(python), inmem, "--server", "fastmcp", "--client", "sdk"]
        commands[("mcpserver", "sdk/")] = [str(python), inmem, "--server", "mcpserver", "--client", "sdk"]
    if ours_ok:
        commands[("ours", "")] = [*me, "--child"]
        commands[("ours", "sdk/")] = [*me, "--client", "sdk", "--child"]
    with_sessions = ["--count", str(sizes["sessions"])]
    for r in range(n_rounds):
        for (side, prefix), cmd in commands.items():
            progress(
                f"{side} in-memory ({'SDK ClientSession' if prefix else 'own client'}), round {r + 1}/"
                f"{n_rounds}: tools/call {TOOLS} x {CONCURRENCY} sessions, {sizes['calls']} calls each; "
                f"{sizes['sessions']} session open+initialize+close"
            )
            argv = [*cmd, "calls", *lists, *one_round, *with_sessions]
            for key, out in run_json(argv, timeout).items():
                keep(side, f"inmemory/{prefix}{key}", out)

    # HTTP: every server up, the same load generator against each, taking turns. With them, the floor: a
    # trivial ASGI app (no MCP) on our own HTTP server (mcpvisor-h11), hypercorn-trio and uvicorn (the
    # peers'), plus h11 on bare trio sockets, measured in the same rounds, so the HTTP ratios can be read
    # against what the HTTP stacks alone do. Each server's CPU time per call is read from /proc.
    if python is not None:
        load = [str(python), str(BASELINES / "http_load.py")]
        floor = str(BASELINES / "asgi_floor.py")
        json_flag = ["--json-response"] if sizes["json_response"] else []
        servers: dict[str, ServerProcess] = {}
        floors: dict[str, ServerProcess] = {}
        try:
            servers["fastmcp"] = ServerProcess(
                "fastmcp",
                lambda p: [str(python), str(BASELINES / "fastmcp_server.py"), "--port", str(p), *json_flag],
            )
            servers["mcpserver"] = ServerProcess(
                "mcpserver",
                lambda p: [str(python), str(BASELINES / "sdk_server.py"), "--port", str(p), *json_flag],
            )
            if ours_ok:
                servers["ours"] = ServerProcess("ours", lambda p: [*me, "--serve-http", str(p), *json_flag])
            if sizes["floor"]:
                for name in ("mcpvisor-h11", "trio-h11", "hypercorn"):
                    floors[name] = ServerProcess(
                        f"floor-{name}",
                        lambda p, name=name: [sys.executable, floor, "--server", name, "--port", str(p)],
                    )
                floors["uvicorn"] = ServerProcess(
                    "floor-uvicorn", lambda p: [str(python), floor, "--server", "uvicorn", "--port", str(p)]
                )
            for server in [*servers.values(), *floors.values()]:
                server.wait_ready()
            for r in range(n_rounds):
                progress(
                    f"http, round {r + 1}/{n_rounds}: tools/call {TOOLS} x {CONCURRENCY} sessions, "
                    f"{sizes['calls']} calls each; {sizes['sessions']} session open+initialize+close"
                    + (" (+ the floors)" if floors else "")
                )
                for tool in TOOLS:
                    for k in CONCURRENCY:
                        for side, server in servers.items():
                            calls = ["calls", "--url", server.url, "--tool", tool, "--sessions", str(k)]
                            out = server.run_load([*load, *calls, *one_round], timeout)
                            keep(side, f"http/{tool}/{k}", out)
                        for name, server in floors.items() if tool == "add" else ():
                            calls = ["calls", "--url", server.url, "--sessions", str(k)]
                            out = server.run_load([*load, *calls, *one_round], timeout)
                            keep("floor", f"http/{name}/{k}", out)
                for side, server in servers.items():
                    sessions = ["sessions", "--url", server.url, "--count", str(sizes["sessions"])]
                    keep(side, "http/sessions", run_json([*load, *sessions, "--rounds", "1"], timeout))
            for side, server in servers.items():
                progress(f"{side} http: server RSS while {sizes['rss_http']} sessions are held")
                sides[side]["rss/http_held"] = held_rss(python, server, sizes["rss_http"])
        finally:
            for server in [*servers.values(), *floors.values()]:
                server.stop()

    for (side, key), runs in parts.items():
        sides.setdefault(side, {})[key] = merge_rounds(runs)

    # RSS per idle session, each count in a fresh process. Memory does not depend on CPU time, so these
    # processes run side by side (a peer's 10,000 sessions alone take about a minute to open).
    rss_jobs: dict[tuple[str, str], list[str]] = {}
    for n in sizes["rss"]:
        if python is not None:
            for peer in PEERS:
                argv = [str(python), inmem, "rss", "--server", peer, "--count", str(n)]
                rss_jobs[(peer, f"rss/{n}")] = argv
        if ours_ok:
            rss_jobs[("ours", f"rss/{n}")] = [*me, "--child", "rss", "--count", str(n)]
    progress(
        f"RSS of {' and '.join(map(str, sizes['rss']))} idle in-process sessions, each in a fresh process"
    )
    for (side, key), out in run_json_parallel(rss_jobs, timeout).items():
        sides[side][key] = out
    return sides


def get(side: dict[str, Any], key: str, field: str) -> Any:
    return side.get(key, {}).get(field)


def advantage(ours: Any, peer: Any, field: str) -> float | None:
    """How many times better ours is: ours/peer for a rate, peer/ours for a latency, CPU or memory."""
    if not isinstance(ours, int | float) or not isinstance(peer, int | float) or not ours or not peer:
        return None
    return float(ours) / float(peer) if field == "per_s" else float(peer) / float(ours)


#: (label, ours key, peer key, field, unit, targets {peer: minimum advantage})
Row = tuple[str, str, str, str, str, dict[str, float]]


def rows(sizes: dict[str, Any]) -> list[Row]:
    """Every figure compared, with the issue-14 target each must meet (none: for information)."""
    out: list[Row] = []
    mode = "JSON" if sizes["json_response"] else "SSE"
    stats = (("calls/s", "per_s", "/s"), ("p50", "p50_s", "us"), ("p99", "p99_s", "us"))
    http_goal = {"fastmcp": 3.0, "mcpserver": 2.0}
    for tool in TOOLS:
        for k in CONCURRENCY:
            key = f"http/{tool}/{k}"
            for name, field, unit in stats:
                out.append((f"HTTP {mode} {tool} {k}s {name}", key, key, field, unit, http_goal))
    out.append(("HTTP session open+init+close/s", "http/sessions", "http/sessions", "per_s", "/s", http_goal))
    for tool in TOOLS:
        for k in CONCURRENCY:
            key = f"inmemory/sdk/{tool}/{k}"
            goal = {"fastmcp": 3.0, "mcpserver": 1.5}
            for name, field, unit in stats:
                out.append((f"in-mem SDK client {tool} {k}s {name}", key, key, field, unit, goal))
    key = "inmemory/sdk/sessions"
    out.append(("in-mem SDK client session open/s", key, key, "per_s", "/s", {}))
    for tool in TOOLS:
        for k in CONCURRENCY:
            key = f"inmemory/{tool}/{k}"
            for name, field, unit in stats:
                goal = {"fastmcp": 10.0} if field == "per_s" else {}
                out.append((f"in-mem own client {tool} {k}s {name}", key, key, field, unit, goal))
    key = "inmemory/sessions"
    out.append(("in-mem own client session open/s", key, key, "per_s", "/s", {}))
    for n in sizes["rss"]:
        out.append((f"RSS/idle session @{n:,}", f"rss/{n}", f"rss/{n}", "bytes_per_session", "B", {}))
    key = "rss/http_held"
    out.append((f"RSS/held HTTP session @{sizes['rss_http']:,}", key, key, "bytes_per_session", "B", {}))
    return out


def fmt(v: Any, unit: str) -> str:
    if not isinstance(v, int | float):
        return "-"
    if unit == "us":
        return f"{v * 1e6:,.0f} us"
    if unit == "B":
        return f"{v / 1024:,.1f} KB"
    return f"{v:,.0f}"


def floor_report(results: dict[str, Any], sizes: dict[str, Any]) -> dict[str, Any]:
    """The HTTP floors next to ours: calls/s of each trivial-app server, and server CPU per call of ours
    against the trio+h11 floor (issue 14: within 1.5x)."""
    floors = results.get("floor", {})
    out: dict[str, Any] = {}
    if not floors:
        return out
    print()
    names = ("mcpvisor-h11", "trio-h11", "hypercorn", "uvicorn")
    print(f"{'HTTP floor (trivial app), calls/s':44} " + " ".join(f"{n:>13}" for n in names))
    for k in CONCURRENCY:
        figures = [get(floors, f"http/{n}/{k}", "per_s") for n in names]
        print(f"{f'{k} session(s)':44} " + " ".join(f"{fmt(v, '/s'):>13}" for v in figures))
    print(f"{'server CPU per call (us)':44} {'ours add':>13} {'trio-h11':>13} {'ours/floor':>13}")
    for k in CONCURRENCY:
        ours = get(results["ours"], f"http/add/{k}", "cpu_per_call_s")
        base = get(floors, f"http/trio-h11/{k}", "cpu_per_call_s")
        r = ours / base if isinstance(ours, float) and isinstance(base, float) and base else None
        out[f"cpu_per_call_over_trio_h11/{k}"] = r
        print(
            f"{f'{k} session(s)':44} {fmt(ours, 'us'):>13} {fmt(base, 'us'):>13} "
            f"{'-' if r is None else f'{r:.2f}x':>13}"
        )
    return out


def report(results: dict[str, Any], sizes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The table: ours, each peer, and how many times better ours is than each (higher is better for
    every ratio: rates ours/peer, latencies and memory peer/ours), with a mark where a target is missed."""
    ratios: dict[str, Any] = {}
    missed: list[str] = []
    print()
    head = f"{'':40} {'mcpvisor':>11} {'FastMCP':>11} {'MCPServer':>11} {'xFastMCP':>9} {'xMCPServer':>11}"
    print(head)
    for label, key, peer_key, field, unit, goal in rows(sizes):
        ours = get(results["ours"], key, field)
        cells = [f"{label:40} {fmt(ours, unit):>11}"]
        peers = {peer: get(results.get(peer, {}), peer_key, field) for peer in PEERS}
        cells += [f"{fmt(v, unit):>11}" for v in peers.values()]
        for peer, v in peers.items():
            r = advantage(ours, v, field)
            ratios[f"{label} / {PEER_NAMES[peer]}"] = r
            flag = ""
            if peer in goal and r is not None and r < goal[peer]:
                flag = "!"
                missed.append(f"{label} vs {PEER_NAMES[peer]}: {r:.2f}x < {goal[peer]}x")
            width = 9 if peer == "fastmcp" else 11
            cells.append(f"{'-' if r is None else f'{r:.2f}x{flag}':>{width}}")
        print(" ".join(cells))
    print("(every ratio: how many times better ours is; '!' marks a missed issue-14 target)")
    floor = floor_report(results, sizes)
    ratios.update(floor)
    per_session = get(results["ours"], f"rss/{max(sizes['rss'])}", "bytes_per_session")
    targets = {
        "every_row_target": not missed,
        "idle_session_within_20KB": isinstance(per_session, int | float) and per_session <= 20 * 1024,
        "http_cpu_within_1_5x_trio_h11": bool(floor) and all((v or 99) <= 1.5 for v in floor.values()),
    }
    for line in missed:
        print(f"MISSED {line}")
    for key, ok in targets.items():
        print(f"target {key:35} {'met' if ok else 'MISSED'}")
    return {**ratios, "missed": missed}, targets


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/server.json")
    parser.add_argument(
        "--json-response",
        action="store_true",
        help="both servers answer POSTs with application/json instead of an SSE stream "
        "(results in server-json.json)",
    )
    parser.add_argument(
        "--handles",
        action="store_true",
        help="state handles (2026-07-28) vs sessions (2025-11-25), ours only (results in handles.json)",
    )
    parser.add_argument(
        "--auth",
        action="store_true",
        help="tools/call over HTTP with a JWT vs without authentication, ours only (results in auth.json)",
    )
    parser.add_argument(
        "--child", choices=["calls", "sessions", "rss", "handle-calls", "handle-rss"], help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--inline-add",
        action="store_true",
        help="our add tool runs inline (on the event loop) instead of in a worker thread as the peers' do",
    )
    parser.add_argument("--serve-http", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=["memory", "sdk"], default="memory", help=argparse.SUPPRESS)
    parser.add_argument("--tools", default=",".join(TOOLS), help=argparse.SUPPRESS)
    parser.add_argument("--sessions", default=",".join(map(str, CONCURRENCY)), help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=2000, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.inline_add:
        os.environ["MCPVISOR_BENCH_INLINE_ADD"] = "1"  # for the child processes too
    if args.serve_http:
        serve_ours_http(args.serve_http, args.json_response)
        return
    if args.child:
        child_main(args)
        return
    if args.handles:
        handles_main(args)
        return
    if args.auth:
        auth_main(args)
        return

    if args.quick:
        sizes: dict[str, Any] = {"calls": 200, "warmup": 30, "rounds": 3, "sessions": 30}
        sizes.update({"rss": [1000], "rss_http": 100, "floor": True})
    else:
        sizes = {"calls": 1000, "warmup": 200, "rounds": 3, "sessions": 150}
        sizes.update({"rss": [1000, 10000], "rss_http": 1000, "floor": True})
    sizes["json_response"] = args.json_response
    started = time.perf_counter()
    why_not = ours_available()
    if why_not:
        progress(f"{why_not}: our side skipped")
    python = ensure_fastmcp_venv()
    results = measure(python, sizes, why_not is None)
    ratios, targets = report(results, sizes)
    fastmcp_version = None
    if python is not None:
        fastmcp_version = subprocess.run(
            [str(python), "-c", "import fastmcp, mcp.types; print(fastmcp.__version__)"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    result = {
        "quick": args.quick,
        "sizes": sizes,
        "inline_add": args.inline_add,
        "seconds": time.perf_counter() - started,
        "machine": {
            "python": platform.python_version(),
            "trio": trio.__version__,
            "fastmcp": fastmcp_version,
            "cpus": os.cpu_count(),
            **source_state(),
        },
        "ours_skipped": why_not,
        **results,
        "advantage_of_ours": ratios,
        "targets_met": targets,
    }
    progress(f"done in {result['seconds']:.0f} s")
    if not args.no_write:
        RESULTS.parent.mkdir(exist_ok=True)
        suffix = "-json" * args.json_response + "-inline" * args.inline_add + "-quick" * args.quick
        name = RESULTS.with_name(f"server{suffix}.json")
        name.write_text(json.dumps(result, indent=2) + "\n")
        progress(f"wrote {name.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
