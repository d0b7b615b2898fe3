"""Abuse scenarios against the server's limits, over real HTTP, with the demo server in a subprocess.

    .venv/bin/python benchmarks/abuse_limits.py [--quick] [--only sessions|abandoned|slow-reader]

- ``sessions``: 100,000 ``initialize`` calls that never end their session. With the default cap
  (``max_sessions`` 10,000) the excess gets HTTP 503 + Retry-After and the server's RSS stays bounded;
  the baseline is the same flood at ``--max-sessions 0`` (no cap), as every server ran before the cap.
- ``abandoned``: one client starts 10,000 ``slow`` calls in one session, each on its own connection,
  and closes each connection as soon as the answer starts (an SSE stream) or is refused. Then a fresh
  client opens its own session and times 50 ``tools/call``; baseline: the same on an idle server.
- ``slow-reader``: one ``slow`` call sending 20,000 progress notifications (no delay between them) to a
  client that reads 4 KB every 10 ms, against a client that reads as fast as it can. Counts what each
  received; every miss must be a notification (the final answer always arrives).

The client is a minimal HTTP/1.1 client on trio sockets (keep-alive, Content-Length), so the client's
own cost does not hide the server's. Figures go to stdout and ``benchmarks/results/abuse_limits.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "abuse_limits.json"
BANNER = "mcpvisor: serving"

JSON_ACCEPT = {"accept": "application/json", "content-type": "application/json"}
SSE_ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


# ---- the server process ------------------------------------------------------------------------------


class Demo:
    """``mcpvisor demo`` on a free port; its log goes to a temporary file (it logs every session)."""

    def __init__(self, *flags: str) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcpvisor", "demo", "--port", "0", *flags],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            text=True,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text()
            if BANNER in text:
                url = next(line for line in text.splitlines() if BANNER in line).rsplit(" ", 1)[1]
                self.port = int(url.rsplit(":", 1)[1].split("/")[0])
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the demo did not start:\n{Path(self.log.name).read_text()[-2000:]}")

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def log_text(self) -> str:
        return Path(self.log.name).read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


# ---- a minimal HTTP/1.1 client -----------------------------------------------------------------------


class Http:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream: trio.SocketStream | None = None
        self.buffer = b""

    async def _connect(self) -> trio.SocketStream:
        if self.stream is None:
            self.stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            self.buffer = b""
        return self.stream

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
            self.stream = None

    async def _fill(self, stream: trio.SocketStream) -> None:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    async def send(self, method: str, headers: dict[str, str], body: Any = None) -> trio.SocketStream:
        stream = await self._connect()
        data = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} /mcp HTTP/1.1", f"host: 127.0.0.1:{self.port}", f"content-length: {len(data)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        return stream

    async def head(self, stream: trio.SocketStream) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            await self._fill(stream)
        raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        first, *rest = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in rest:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(first.split(" ", 2)[1]), headers

    async def request(
        self, method: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        """A request whose answer has a Content-Length (JSON answers and errors)."""
        try:
            stream = await self.send(method, headers, body)
            status, response_headers = await self.head(stream)
        except (ConnectionError, trio.BrokenResourceError):
            await self.close()
            stream = await self.send(method, headers, body)
            status, response_headers = await self.head(stream)
        length = int(response_headers.get("content-length", "0"))
        while len(self.buffer) < length:
            await self._fill(stream)
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
        return status, response_headers, content


def init_body(i: int = 1) -> dict[str, Any]:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "abuse", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": i, "method": "initialize", "params": params}


async def open_session(http: Http) -> dict[str, str]:
    status, headers, body = await http.request("POST", JSON_ACCEPT, init_body())
    if status != 200:
        raise RuntimeError(f"initialize answered {status}: {body[:200]!r}")
    session = {"mcp-session-id": headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await http.request("POST", {**JSON_ACCEPT, **session}, note)
    return session


def tool_call(i: int, name: str, arguments: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}


# ---- scenario 1: sessions ----------------------------------------------------------------------------


async def flood_initialize(port: int, total: int, workers: int = 32) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    retry_after: set[str] = set()
    remaining = iter(range(total))
    started = time.perf_counter()

    async def worker() -> None:
        http = Http(port)
        for _ in remaining:
            status, headers, _ = await http.request("POST", JSON_ACCEPT, init_body())
            statuses[status] = statuses.get(status, 0) + 1
            if status == 503:
                retry_after.add(headers.get("retry-after", "missing"))
        await http.close()

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
    return {
        "initialize_calls": total,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "retry_after_values": sorted(retry_after),
        "seconds": round(time.perf_counter() - started, 1),
    }


def scenario_sessions(total: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, flags in (("capped_default", ()), ("uncapped_baseline", ("--max-sessions", "0"))):
        print(f"sessions: {total:,} initialize calls, {label} ...", file=sys.stderr, flush=True)
        demo = Demo(*flags)
        try:
            rss_before = demo.rss()
            figures = trio.run(flood_initialize, demo.port, total)
            time.sleep(0.5)
            rss_after = demo.rss()
            figures.update(
                rss_before_mb=round(rss_before / 2**20, 1), rss_after_mb=round(rss_after / 2**20, 1)
            )
            figures["rss_growth_mb"] = round((rss_after - rss_before) / 2**20, 1)
            out[label] = figures
        finally:
            demo.stop()
    return out


# ---- scenario 2: abandoned calls, then a fresh client ------------------------------------------------


async def fresh_client_latency(port: int, calls: int = 50) -> dict[str, Any]:
    http = Http(port)
    session = await open_session(http)
    times: list[float] = []
    for i in range(calls):
        started = time.perf_counter()
        status, _, body = await http.request(
            "POST", {**JSON_ACCEPT, **session}, tool_call(i + 10, "counter", {})
        )
        times.append(time.perf_counter() - started)
        assert status == 200 and b'"result"' in body, (status, body[:200])
    await http.close()
    times.sort()
    return {
        "calls": calls,
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "max_ms": round(times[-1] * 1000, 2),
    }


async def abandon_slow_calls(port: int, total: int, workers: int = 64) -> dict[str, Any]:
    setup = Http(port)
    session = await open_session(setup)
    statuses: dict[int, int] = {}
    remaining = iter(range(total))
    started = time.perf_counter()

    async def worker() -> None:
        for i in remaining:
            http = Http(port)
            try:
                stream = await http.send(
                    "POST", {**SSE_ACCEPT, **session}, tool_call(100 + i, "slow", {"steps": 20})
                )
                status, _ = await http.head(stream)  # the SSE head (200) or a refusal (429)
                statuses[status] = statuses.get(status, 0) + 1
            finally:
                await http.close()  # abandoned: the client leaves without reading the answer

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
    flood_seconds = time.perf_counter() - started
    latency = await fresh_client_latency(port)
    await setup.close()
    return {
        "slow_calls": total,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "flood_seconds": round(flood_seconds, 1),
        "fresh_client_during_flood": latency,
    }


def scenario_abandoned(total: int) -> dict[str, Any]:
    print(
        f"abandoned: {total:,} slow calls abandoned in one session, then a fresh client ...", file=sys.stderr
    )
    demo = Demo()
    try:
        baseline = trio.run(fresh_client_latency, demo.port)
        figures = trio.run(abandon_slow_calls, demo.port, total)
        figures["fresh_client_idle_baseline"] = baseline
        figures["p50_ratio_vs_idle"] = round(
            figures["fresh_client_during_flood"]["p50_ms"] / max(baseline["p50_ms"], 1e-3), 2
        )
        figures["server_rss_mb"] = round(demo.rss() / 2**20, 1)
        return figures
    finally:
        demo.stop()


# ---- scenario 3: a slow reader -----------------------------------------------------------------------


async def read_progress(port: int, steps: int, pause: float | None) -> dict[str, Any]:
    http = Http(port)
    session = await open_session(http)
    stream = await http.send(
        "POST", {**SSE_ACCEPT, **session}, tool_call(7, "slow", {"steps": steps, "delay": 0}, "p")
    )
    status, _ = await http.head(stream)
    assert status == 200
    progress = 0
    final: Any = None
    buffer = http.buffer
    started = time.perf_counter()
    while final is None:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        buffer += chunk
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            for line in event.split(b"\n"):
                if line.startswith(b"data: ") and len(line) > 6:
                    message = json.loads(line[6:])
                    if message.get("method") == "notifications/progress":
                        progress += 1
                    elif message.get("id") == 7:
                        final = message
        if pause:
            await trio.sleep(pause)
    await http.close()
    return {
        "progress_sent": steps,
        "progress_received": progress,
        "dropped": steps - progress,
        "final_answer_received": final is not None and "result" in final,
        "seconds": round(time.perf_counter() - started, 2),
    }


def scenario_slow_reader(steps: int) -> dict[str, Any]:
    print(f"slow-reader: {steps:,} progress notifications ...", file=sys.stderr, flush=True)
    demo = Demo()
    try:
        fast = trio.run(read_progress, demo.port, steps, None)
        slow = trio.run(read_progress, demo.port, steps, 0.01)
        logged = demo.log_text().count("dropping notifications")
    finally:
        demo.stop()
    return {"fast_reader": fast, "slow_reader_4kb_per_10ms": slow, "drop_warnings_logged": logged}


# ---- main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of each flood (a smoke run)")
    parser.add_argument("--only", choices=("sessions", "abandoned", "slow-reader"))
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    results: dict[str, Any] = {"python": sys.version.split()[0], "quick": args.quick}
    if args.only in (None, "sessions"):
        results["sessions"] = scenario_sessions(100_000 // scale)
    if args.only in (None, "abandoned"):
        results["abandoned"] = scenario_abandoned(10_000 // scale)
    if args.only in (None, "slow-reader"):
        results["slow_reader"] = scenario_slow_reader(20_000 // scale)
    print(json.dumps(results, indent=2))
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() and args.only else {}
        RESULTS.write_text(json.dumps({**previous, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
