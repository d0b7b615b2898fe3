"""Cost per call and memory per idle session as idle sessions pile up (issue 14).

    .venv/bin/python benchmarks/idle_sessions.py            # 1, 100, 1,000, 10,000 idle sessions
    .venv/bin/python benchmarks/idle_sessions.py --quick    # 1, 100, 1,000

For each count N, in a fresh process: our server (``start_server``, in-process) with N idle sessions
(each opened by ``open_memory_client(..., close=False)``: created, initialized, left), then 20 active
sessions calling ``counter`` (a session-state read+write) concurrently, ``--calls`` calls per round,
3 rounds. Printed per N: calls/s, p50 and p99 per call, RSS per idle session (RSS growth over the N
sessions / N, after ``gc.collect()``); the ratios are against N = 1, so a flat curve reads 1.00.

``--gc freeze``: the same, with ``gc.freeze()`` after start-up and again after the idle sessions are
opened (what a server that opens many sessions at once may do to keep full collections short);
``--gc off``: the collector disabled during the calls (the lower bound of what the collector costs).
The rounds of the modes are measured one after another for each N, interleaved round by round.
Results: benchmarks/results/idle_sessions.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results" / "idle_sessions.json"
ACTIVE = 20
MODES = ("default", "freeze", "off")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measure(idle: int, calls: int, rounds: int, mode: str) -> dict[str, Any]:
    import trio.testing
    from server import memory_client, running_port, summary  # benchmarks/server.py

    if mode == "freeze":
        gc.collect()
        gc.freeze()
    async with running_port(max_sessions=idle + ACTIVE + 10) as port:  # above the default 10,000
        async with memory_client(port, close=False) as first:
            await first.call_tool("counter", {})
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        before = rss_bytes()
        for _ in range(idle - 1):
            async with memory_client(port, close=False):
                pass
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = rss_bytes()
        if mode == "freeze":
            gc.freeze()
        async with trio.open_nursery() as nursery:
            clients = []
            for _ in range(ACTIVE):
                clients.append(await nursery.start(_hold_client, port))
            per_client = max(1, calls // ACTIVE)

            async def drive(c: Any, n: int, latencies: list[float] | None) -> None:
                for _ in range(n):
                    t0 = time.perf_counter()
                    result = await c.call_tool("counter", {})
                    if latencies is not None:
                        latencies.append(time.perf_counter() - t0)
                    if result.get("isError"):
                        raise RuntimeError(f"counter answered {result}")

            async def all_clients(n: int, latencies: list[float] | None) -> None:
                async with trio.open_nursery() as inner:
                    for c in clients:
                        inner.start_soon(drive, c, n, latencies)

            await all_clients(10, None)
            results = []
            for _ in range(rounds):
                latencies: list[float] = []
                if mode == "off":
                    gc.disable()
                t0 = time.perf_counter()
                await all_clients(per_client, latencies)
                wall = time.perf_counter() - t0
                gc.enable()
                results.append(summary(latencies, per_client * ACTIVE, wall))
            live = len(port.session_ids())
            nursery.cancel_scope.cancel()
    if live < idle + ACTIVE:
        raise RuntimeError(f"expected {idle + ACTIVE} live sessions, found {live}")
    out: dict[str, Any] = {k: statistics.median(r[k] for r in results) for k in results[0]}
    per_idle = (after - before) / (idle - 1) if idle > 1 else None
    return {"idle": idle, "mode": mode, "rounds": results, **out, "rss_per_idle_session": per_idle}


async def _hold_client(port: Any, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    from server import memory_client

    async with memory_client(port) as client:
        task_status.started(client)
        await trio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gc", choices=MODES, default="default", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=2000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.child is not None:
        print(json.dumps(trio.run(measure, args.child, args.calls, 1, args.gc)))
        return
    counts = (1, 100, 1000) if args.quick else (1, 100, 1000, 10000)
    rounds = 3
    started = time.perf_counter()
    found: dict[str, dict[int, list[dict[str, Any]]]] = {m: {n: [] for n in counts} for m in MODES}
    for n in counts:
        for r in range(rounds):
            for mode in MODES:
                print(
                    f"[idle_sessions] {n} idle, {mode}, round {r + 1}/{rounds}", file=sys.stderr, flush=True
                )
                cmd = [sys.executable, __file__, "--child", str(n), "--gc", mode, "--calls", str(args.calls)]
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
                if out.returncode != 0:
                    raise RuntimeError(out.stderr[-3000:])
                found[mode][n].append(json.loads(out.stdout.strip().splitlines()[-1]))
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for mode in MODES:
        table[mode] = {}
        for n in counts:
            runs = found[mode][n]
            rss = [r["rss_per_idle_session"] for r in runs if r["rss_per_idle_session"] is not None]
            table[mode][n] = {
                "per_s": statistics.median(r["per_s"] for r in runs),
                "p50_s": statistics.median(r["p50_s"] for r in runs),
                "p99_s": statistics.median(r["p99_s"] for r in runs),
                "rss_per_idle_session": statistics.median(rss) if rss else None,
                "runs": runs,
            }
    print(f"\n{ACTIVE} active sessions calling `counter`, N idle present (in-memory, medians of {rounds})")
    heads = ("idle N", "calls/s", "p50 us", "p99 us", "/s vs N=1", "p99 vs N=1", "KB/idle")
    print(f"{'gc':8} " + " ".join(f"{h:>10}" for h in heads))
    for mode in MODES:
        base = table[mode][counts[0]]
        for n in counts:
            row = table[mode][n]
            kb = "-" if row["rss_per_idle_session"] is None else f"{row['rss_per_idle_session'] / 1024:.1f}"
            cells = (
                f"{n:,}",
                f"{row['per_s']:,.0f}",
                f"{row['p50_s'] * 1e6:,.0f}",
                f"{row['p99_s'] * 1e6:,.0f}",
                f"{row['per_s'] / base['per_s']:.2f}",
                f"{row['p99_s'] / base['p99_s']:.2f}",
                kb,
            )
            print(f"{mode:8} " + " ".join(f"{c:>10}" for c in cells))
    largest = table["default"][counts[-1]]
    targets = {
        "rss_per_idle_session_within_20KB": (largest["rss_per_idle_session"] or 0) <= 20 * 1024,
        "calls_per_s_flat_within_20pct": largest["per_s"] >= 0.8 * table["default"][counts[0]]["per_s"],
    }
    for key, ok in targets.items():
        print(f"target {key:40} {'met' if ok else 'MISSED'}")
    result = {
        "counts": counts,
        "active": ACTIVE,
        "seconds": time.perf_counter() - started,
        "machine": {"python": platform.python_version(), "trio": trio.__version__, "cpus": os.cpu_count()},
        "table": {mode: {str(n): v for n, v in rows.items()} for mode, rows in table.items()},
        "targets_met": targets,
    }
    if not args.no_write:
        name = RESULTS.with_name("idle_sessions" + "-quick" * args.quick + ".json")
        name.parent.mkdir(exist_ok=True)
        name.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {name.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
