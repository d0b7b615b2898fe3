"""HTTP abuse benchmark (issue 7, item 9): a slow-body flood against the server at its defaults.

    .venv/bin/python benchmarks/abuse_http.py                 # both servers, 1,100 connections (~2 min)
    .venv/bin/python benchmarks/abuse_http.py --quick         # 300 connections, short hold
    .venv/bin/python benchmarks/abuse_http.py --servers h11

The review's scenario: `mcpvisor demo --transport http` in its own process with the usual file
descriptor limit (`ulimit -n` 1,024, set for the server process only), and 1,100 connections that each
send a request head announcing a body and then nothing. Measured for each HTTP server, started and
stopped by pid:

- a fresh client's `initialize` before the flood, during it (a few attempts, each with a timeout), and
  after the flood connections were released: served or not, status, latency;
- what happened to the flood connections: closed by the server within the run (and when), answered
  with which status, still open at the end of the hold;
- the server's stderr: lines and tracebacks logged, and whether the process is still alive.

Writes benchmarks/results/abuse_http.json (abuse_http-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
INIT = (
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
    b'"capabilities":{},"clientInfo":{"name":"abuse","version":"1"}}}'
)
HEAD = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Accept: application/json, text/event-stream\r\n"
)
STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})")


def start_server(http_server: str, fd_limit: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    def limit_fds() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, hard))

    err = log.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcpvisor",
            "demo",
            "--transport",
            "http",
            "--port",
            "0",
            "--http-server",
            http_server,
        ],
        stdout=subprocess.DEVNULL,
        stderr=err,
        cwd=ROOT,
        preexec_fn=limit_fds,
    )
    for _ in range(300):
        text = log.read_text(errors="replace")
        found = re.search(r"serving \S+ at http://127\.0\.0\.1:(\d+)/mcp", text)
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {text[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


async def fresh_initialize(port: int, timeout: float) -> dict[str, Any]:
    """One new connection, one initialize, Connection: close; what came back and how long it took."""
    started = trio.current_time()
    out = b""
    with trio.move_on_after(timeout):
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(
                    HEAD
                    + b"Connection: close\r\nContent-Length: %d\r\nAccept: application/json\r\n\r\n"
                    % len(INIT)
                    + INIT
                )
                while data := await stream.receive_some(65536):
                    out += data
        except OSError as exc:
            return {"served": False, "error": repr(exc), "seconds": round(trio.current_time() - started, 3)}
    status = STATUS.match(out)
    return {
        "served": bool(status) and status.group(1) == b"200" if status else False,
        "status": int(status.group(1)) if status else None,
        "seconds": round(trio.current_time() - started, 3),
    }


class Flood:
    """``count`` connections that send a head announcing 1,000 body bytes and then nothing."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.opened = 0
        self.open_failed = 0
        self.closed_at: list[float] = []
        self.statuses: dict[str, int] = {}
        self.streams: list[trio.SocketStream] = []
        self.t0 = 0.0
        self.all_closed = trio.Event()
        self.opening = True

    async def run(self, port: int, nursery: trio.Nursery) -> None:
        self.t0 = trio.current_time()
        for _ in range(self.count):
            try:
                with trio.fail_after(5):
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    await stream.send_all(HEAD + b"Content-Length: 1000\r\n\r\n")
            except (OSError, trio.TooSlowError, trio.BrokenResourceError):
                self.open_failed += 1
                continue
            self.opened += 1
            self.streams.append(stream)
            nursery.start_soon(self._watch, stream)
        self.opening = False
        if len(self.closed_at) == self.opened:
            self.all_closed.set()

    async def _watch(self, stream: trio.SocketStream) -> None:
        out = b""
        try:
            while data := await stream.receive_some(65536):
                out += data
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        if stream.socket.fileno() == -1:
            return  # we closed it ourselves at the end
        self.closed_at.append(trio.current_time() - self.t0)
        status = STATUS.match(out)
        key = status.group(1).decode() if status else "closed without an answer"
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if not self.opening and len(self.closed_at) == self.opened:
            self.all_closed.set()

    async def close(self) -> None:
        for stream in self.streams:
            stream.socket.close()


async def scenario(http_server: str, count: int, fd_limit: int, hold: float, attempts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc, port = start_server(http_server, fd_limit, log)
        result: dict[str, Any] = {
            "server": http_server,
            "flood_connections": count,
            "server_fd_limit": fd_limit,
        }
        try:
            result["before"] = await fresh_initialize(port, 10)
            flood = Flood(count)
            async with trio.open_nursery() as nursery:
                await flood.run(port, nursery)
                result["flood_open_seconds"] = round(trio.current_time() - flood.t0, 2)
                await trio.sleep(1)
                during = [await fresh_initialize(port, 5) for _ in range(attempts)]
                result["during"] = during
                with trio.move_on_at(flood.t0 + hold):
                    await flood.all_closed.wait()
                result["after_hold"] = await fresh_initialize(port, 10)
                result["flood"] = {
                    "opened": flood.opened,
                    "open_failed": flood.open_failed,
                    "closed_by_server": len(flood.closed_at),
                    "still_open_at_end": flood.opened - len(flood.closed_at),
                    "all_closed_after_s": round(max(flood.closed_at), 2)
                    if flood.closed_at and len(flood.closed_at) == flood.opened
                    else None,
                    "answers": flood.statuses,
                    "hold_seconds": hold,
                }
                await flood.close()
                nursery.cancel_scope.cancel()
            await trio.sleep(0.5)
            result["after_flood_closed"] = await fresh_initialize(port, 10)
            result["server_alive"] = proc.poll() is None
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            text = log.read_text(errors="replace")
        result["server_log_lines"] = len(text.splitlines())
        result["server_tracebacks"] = text.count("Traceback (most recent call last)")
        result["server_warnings"] = [line for line in text.splitlines() if "WARNING" in line][:10]
        served = [a["served"] for a in result["during"]]
        result["fresh_served_during_flood"] = f"{sum(served)}/{len(served)}"
        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 connections, a short hold")
    parser.add_argument("--servers", nargs="+", default=["h11", "hypercorn"], choices=["h11", "hypercorn"])
    parser.add_argument("--connections", type=int, help="flood size (default 1100; --quick 300)")
    parser.add_argument("--fd-limit", type=int, default=1024, help="the server's ulimit -n (default 1024)")
    parser.add_argument("--hold", type=float, help="seconds to wait for the server to release the flood (40)")
    args = parser.parse_args()
    count = args.connections or (300 if args.quick else 1100)
    hold = args.hold or (5.0 if args.quick else 40.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:  # the flood's client side lives in this process
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
    runs = [trio.run(scenario, server, count, args.fd_limit, hold, 3) for server in args.servers]
    out = {
        "benchmark": "abuse_http",
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("abuse_http-quick.json" if args.quick else "abuse_http.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    for run in runs:
        flood = run["flood"]
        during = ", ".join(f"{a.get('status')} in {a['seconds']} s" for a in run["during"])
        limit = run["server_fd_limit"]
        print(f"== {run['server']}: {flood['opened']} slow-body connections, server ulimit -n {limit}")
        print(f"  fresh initialize before: {run['before'].get('status')} in {run['before']['seconds']} s")
        print(f"  fresh initialize during the flood: {run['fresh_served_during_flood']} served ({during})")
        print(
            f"  flood: {flood['closed_by_server']} closed by the server, {flood['still_open_at_end']} "
            f"still open after {flood['hold_seconds']} s "
            f"(all closed after: {flood['all_closed_after_s']} s); "
            f"answers {flood['answers']}"
        )
        after = (run["after_hold"].get("status"), run["after_flood_closed"].get("status"))
        print(
            f"  after: {after[0]} (hold end), {after[1]} (flood closed); "
            f"server alive: {run['server_alive']}; "
            f"log: {run['server_log_lines']} lines, {run['server_tracebacks']} tracebacks"
        )
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
