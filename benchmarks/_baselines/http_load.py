"""The Streamable HTTP load generator of benchmarks/server.py: one client, the same for both servers.

Runs with the FastMCP venv's Python (plain asyncio, standard library only) and prints one JSON object. It
speaks HTTP/1.1 with keep-alive over raw asyncio streams rather than through an HTTP library, so that the
client costs as little CPU as it can: on a 2-core machine the generator shares the cores with the server
it measures, and a heavy client would flatten every ratio towards 1.

Per session it does the 2025-11-25 handshake exchange: POST ``initialize`` (the answer carries
``Mcp-Session-Id``), POST ``notifications/initialized`` (202), then POST ``tools/call`` with the session id
and ``Mcp-Protocol-Version``; DELETE ends the session. A POST answer may be ``application/json`` or an SSE
stream (``text/event-stream``, read to its end, the JSON-RPC response picked out of its ``data:`` lines),
so either server may answer either way and both are parsed the same.

Modes:

- ``calls``: ``--sessions K`` sessions, each on its own connection, call ``--tool`` concurrently;
  ``--warmup`` calls, then ``--rounds`` timed rounds of ``--calls`` calls in all. Per round: calls/s over
  the round's wall time, p50 and p99 of the per-call latency; the JSON holds every round and the medians.
- ``sessions``: per round, ``--count`` times in a row on one connection: initialize + initialized + DELETE.
- ``hold``: opens ``--count`` sessions (20 at a time) and keeps them; prints ``{"held": N}``, then waits
  for a line on stdin (the caller measures the server's RSS meanwhile), then exits without closing them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit

PROTOCOL_VERSION = "2025-11-25"


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it are sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        reader, writer = await self._connect()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        got: dict[str, str] = {}
        for line in header_lines:
            if line:
                k, _, v = line.partition(":")
                got[k.strip().lower()] = v.strip()
        if "content-length" in got:
            data = await reader.readexactly(int(got["content-length"]))
        elif got.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            data = b""
        if got.get("connection", "").lower() == "close":
            await self.close()
        return status, got, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def pick_response(headers: dict[str, str], body: bytes, request_id: int) -> dict[str, Any]:
    ctype = headers.get("content-type", "")
    if ctype.startswith("application/json"):
        msg: dict[str, Any] = json.loads(body)
        return msg
    if ctype.startswith("text/event-stream"):
        for line in body.decode().splitlines():
            if line.startswith("data:"):
                payload = line[5:].strip()
                if not payload:
                    continue
                msg = json.loads(payload)
                if msg.get("id") == request_id and ("result" in msg or "error" in msg):
                    return msg
        raise HttpError(f"no response to request {request_id} in the SSE stream: {body[:300]!r}")
    raise HttpError(f"unexpected content-type {ctype!r}: {body[:300]!r}")


class Session:
    """One MCP session over its own connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        self.session_id: str | None = None
        self.next_id = 0

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.session_id is not None:
            h["Mcp-Session-Id"] = self.session_id
            h["Mcp-Protocol-Version"] = PROTOCOL_VERSION
        return h

    async def rpc(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        rid = self.next_id
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}).encode()
        status, headers, data = await self.conn.request("POST", self.path, self._headers(), body)
        if status != 200:
            raise HttpError(f"{method}: HTTP {status}: {data[:300]!r}")
        msg = pick_response(headers, data, rid)
        if "error" in msg:
            raise HttpError(f"{method}: {msg['error']}")
        if method == "initialize":
            self.session_id = headers.get("mcp-session-id")
            if self.session_id is None:
                raise HttpError("initialize answered without Mcp-Session-Id")
        return msg["result"]

    async def notify(self, method: str) -> None:
        body = json.dumps({"jsonrpc": "2.0", "method": method}).encode()
        status, _, data = await self.conn.request("POST", self.path, self._headers(), body)
        if status != 202:
            raise HttpError(f"{method}: HTTP {status}: {data[:300]!r}")

    async def open(self) -> None:
        self.session_id = None
        await self.rpc(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcpvisor-http-load", "version": "0"},
            },
        )
        await self.notify("notifications/initialized")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        result = await self.rpc("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise HttpError(f"tool {name} failed: {result}")
        return result

    async def delete(self) -> None:
        status, _, data = await self.conn.request("DELETE", self.path, self._headers())
        if status not in (200, 202, 204):
            raise HttpError(f"DELETE: HTTP {status}: {data[:300]!r}")
        self.session_id = None


def tool_args(tool: str, i: int) -> dict[str, Any]:
    return {"a": i, "b": 1} if tool == "add" else {}


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


async def run_calls(url: str, tool: str, n_sessions: int, calls: int, warmup: int, rounds: int) -> Any:
    sessions = [Session(url) for _ in range(n_sessions)]
    await asyncio.gather(*(s.open() for s in sessions))
    per_session = max(1, calls // n_sessions)

    async def drive(s: Session, n: int, latencies: list[float] | None) -> None:
        for i in range(n):
            t0 = time.perf_counter()
            result = await s.call_tool(tool, tool_args(tool, i))
            if latencies is not None:
                latencies.append(time.perf_counter() - t0)
            if i == 0 and tool == "add" and result["content"][0]["text"] != "1":
                raise HttpError(f"add(0, 1) answered {result}")

    await asyncio.gather(*(drive(s, max(1, warmup // n_sessions), None) for s in sessions))
    results = []
    for _ in range(rounds):
        latencies: list[float] = []
        t0 = time.perf_counter()
        await asyncio.gather(*(drive(s, per_session, latencies) for s in sessions))
        wall = time.perf_counter() - t0
        results.append(summary(latencies, per_session * n_sessions, wall))
    if tool == "counter":
        last = await sessions[0].call_tool("counter", {})
        expected = max(1, warmup // n_sessions) + per_session * rounds + 1
        if last["content"][0]["text"] != str(expected):
            raise HttpError(f"counter: expected {expected}, got {last}")
    for s in sessions:
        await s.delete()
        await s.conn.close()
    return {"tool": tool, "sessions": n_sessions, "calls": per_session * n_sessions, **medians(results)}


async def run_sessions(url: str, count: int, warmup: int, rounds: int) -> Any:
    s = Session(url)
    for _ in range(warmup):
        await s.open()
        await s.delete()
    results = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        latencies = []
        for _ in range(count):
            t1 = time.perf_counter()
            await s.open()
            await s.delete()
            latencies.append(time.perf_counter() - t1)
        results.append(summary(latencies, count, time.perf_counter() - t0))
    await s.conn.close()
    return {"count": count, **medians(results)}


async def run_hold(url: str, count: int) -> None:
    sessions = [Session(url) for _ in range(count)]
    for i in range(0, count, 20):
        batch = sessions[i : i + 20]
        await asyncio.gather(*(s.open() for s in batch))
        # Keep the session, drop the connection: the server must hold the session, not the socket.
        await asyncio.gather(*(s.conn.close() for s in batch))
    print(json.dumps({"held": count}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["calls", "sessions", "hold"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--tool", default="add", choices=["add", "counter"])
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "calls":
        out = asyncio.run(run_calls(args.url, args.tool, args.sessions, args.calls, args.warmup, args.rounds))
    elif args.mode == "sessions":
        out = asyncio.run(run_sessions(args.url, args.count, min(args.warmup, 50), args.rounds))
    else:
        asyncio.run(run_hold(args.url, args.count))
        return
    print(json.dumps(out))


if __name__ == "__main__":
    main()
