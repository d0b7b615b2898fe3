"""The cost of serving sessions from a shared state store (issue 11): one store read per request.

    .venv/bin/python benchmarks/shared_sessions.py            # about a minute
    .venv/bin/python benchmarks/shared_sessions.py --quick    # smoke run

On a store other processes may share (SQLite, Redis), a node reads a session's settings record before
each of its requests, so a DELETE through another node is noticed before anything is served
(docs/server.md, "Many nodes on one store"). This measures what that read costs: tools/call round
trips/s and p50/p99 of an ``add`` (no state) and ``counter`` (an atomic update of one value)
tools, with the in-memory client on one process, ``shared_state_store=True`` (the default for these
stores) against ``shared_state_store=False`` (the single-process rules: no read), on SQLite and on a
private redis-server this script starts on a free loopback port and stops by pid. 1 session, and 20
sessions at once; each figure is the median of the rounds, the two settings taking turns.
Results go to benchmarks/results/shared_sessions.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _redis_server import redis_server_binary, start_redis_server  # noqa: E402
from mcpvisor.runtime.server import start_server  # noqa: E402
from mcpvisor.runtime.transports.memory import open_memory_client  # noqa: E402

from mcpvisor import Context, Server  # noqa: E402

demo = Server("shared-sessions-bench")


@demo.tool()
def add(a: int, b: int) -> int:
    return a + b


@demo.tool()
async def counter(ctx: Context) -> int:
    count: int = await ctx.update_state("count", lambda n: n + 1, default=0)
    return count


async def one_round(store: str, shared: bool, tool: str, sessions: int, calls: int) -> dict[str, float]:
    """``calls`` calls of ``tool`` in each of ``sessions`` concurrent sessions: calls/s, p50, p99."""
    latencies: list[float] = []
    async with start_server(demo, session_state_store=store, shared_state_store=shared) as port:

        async def client() -> None:
            async with open_memory_client(port) as c:
                for _ in range(20):  # warm-up
                    await c.call_tool(tool, {"a": 1, "b": 2} if tool == "add" else {})
                for _ in range(calls):
                    t0 = time.perf_counter()
                    await c.call_tool(tool, {"a": 1, "b": 2} if tool == "add" else {})
                    latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(sessions):
                nursery.start_soon(client)
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "calls_per_s": len(latencies) / elapsed,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


async def measure(stores: dict[str, str], rounds: int, calls: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, store in stores.items():
        for tool in ("add", "counter"):
            for sessions in (1, 20):
                per: dict[bool, list[dict[str, float]]] = {True: [], False: []}
                for _ in range(rounds):
                    for shared in (False, True):
                        per[shared].append(await one_round(store, shared, tool, sessions, calls // sessions))
                row: dict[str, Any] = {}
                for shared, runs in per.items():
                    row["shared" if shared else "single"] = {
                        k: statistics.median(r[k] for r in runs) for k in runs[0]
                    }
                row["ratio"] = row["shared"]["calls_per_s"] / row["single"]["calls_per_s"]
                key = f"{name} {tool} {sessions} session{'s' if sessions > 1 else ''}"
                results[key] = row
                one, many = row["single"], row["shared"]
                print(
                    f"{key:32} single {one['calls_per_s']:8.0f}/s p50 {one['p50_us']:7.0f}us"
                    f" | shared {many['calls_per_s']:8.0f}/s p50 {many['p50_us']:7.0f}us"
                    f" p99 {many['p99_us']:7.0f}us | {row['ratio']:.2f}x",
                    flush=True,
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rounds, calls = (1, 200) if args.quick else (3, 2000)
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        binary = redis_server_binary()
        redis = start_redis_server(binary, Path(tmp)) if binary is not None else None
        if redis is not None:
            stores["redis"] = redis.url
        else:
            print("redis-server not found: Redis skipped")
        try:
            results = trio.run(measure, stores, rounds, calls)
        finally:
            if redis is not None:
                redis.stop()
    if not args.no_write and not args.quick:
        out = ROOT / "benchmarks" / "results" / "shared_sessions.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {out}")


if __name__ == "__main__":
    main()
