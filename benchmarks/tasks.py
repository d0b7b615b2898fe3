"""Background tasks: round trips, paging and memory, on every shipped task backend.

- task round trips (2025-11-25 wire, in-memory transport): ``tools/call`` with ``params.task`` then
  ``tasks/result``, per second and p50/p99, on memory, SQLite and Redis; the same tool called inline
  is the baseline, so the ratio is what running as a task costs;
- ``tasks/list`` over 10,000 tasks of one session in pages of 100: the first and the last page's
  time (a cursor is a seek, so the last page must not cost more than the first);
- bytes held per finished task (memory backend, tracemalloc), after the bodies have ended;
- the 2026-07-28 pattern (a ``tools/call`` of a task tool, then ``tasks/get`` until completed) on ours
  and on FastMCP 4.1.4 + fastmcp-tasks (``_baselines/fastmcp_task_bench.py``, its own asyncio process
  and venv, ``benchmarks/.venv-fastmcp-tasks``, given the pins below when it lacks them).

Redis: a redis-server this script starts on a free loopback port and stops by pid (skipped when the
binary is missing).

Usage: ``python benchmarks/tasks.py [--duration 2] [--tasks 10000]``; results in
benchmarks/results/tasks.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import trio
import trio.testing
from _redis_process import start_redis
from mcpvisor.backends import MemoryTaskBackend
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client

HERE = Path(__file__).resolve().parent

app = Server("tasks-bench")


@app.tool(task="optional")
async def add(a: int, b: int) -> int:
    return a + b


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def task_round_trip(client: MemoryClient, n: int) -> None:
    created = await client.request("tools/call", {"name": "add", "arguments": {"a": n, "b": 1}, "task": {}})
    result = await client.request("tasks/result", {"taskId": created["task"]["taskId"]})
    assert result["structuredContent"] == {"result": n + 1}


async def inline_call(client: MemoryClient, n: int) -> None:
    result = await client.request("tools/call", {"name": "add", "arguments": {"a": n, "b": 1}})
    assert result["structuredContent"] == {"result": n + 1}


async def measure(client: MemoryClient, op: Any, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    for n in range(50):  # warm up
        await op(client, n)
    start = time.perf_counter()
    while time.perf_counter() - start < duration:
        t0 = time.perf_counter()
        await op(client, len(latencies))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "per_s": round(len(latencies) / elapsed),
        "p50_us": round(statistics.median(latencies) * 1e6),
        "p99_us": round(latencies[int(len(latencies) * 0.99) - 1] * 1e6),
    }


async def round_trips(name: str, backend: str, duration: float, results: dict[str, Any]) -> None:
    async with start_server(app, task_backend=backend) as running, open_memory_client(running) as client:
        task = await measure(client, task_round_trip, duration)
        inline = await measure(client, inline_call, duration)
    results[name] = {"task": task, "inline": inline, "inline/task": round(inline["per_s"] / task["per_s"], 2)}
    log(
        f"{name:>8}: task create+result {task['per_s']:,}/s p50 {task['p50_us']} us p99 {task['p99_us']} us;"
        f" inline call {inline['per_s']:,}/s ({results[name]['inline/task']}x)"
    )


async def paging(name: str, backend: str, count: int, results: dict[str, Any]) -> None:
    async with (
        start_server(app, task_backend=backend, task_list_page=100) as running,
        open_memory_client(running) as client,
    ):
        start = time.perf_counter()
        for n in range(count):
            await client.request("tools/call", {"name": "add", "arguments": {"a": n, "b": 0}, "task": {}})
        created = time.perf_counter() - start
        # Let every body end and the TaskRuntime write its outcome first: lists measured meanwhile
        # would queue behind 10,000 outcome writes in the runtime's mailbox.
        bodies = next(row.handle for row in running.tree.which_children() if row.id == "task_supervisor")
        for _ in range(12_000):  # bounded: at most 10 minutes
            if not bodies.count_children().active:
                break
            await trio.sleep(0.05)
        await client.request("tasks/list", {})  # after every queued outcome: the mailbox is drained
        times: list[float] = []
        cursor: str | None = None
        seen = 0
        for _ in range(count // 100 + 2):
            t0 = time.perf_counter()
            page = await client.request("tasks/list", {"cursor": cursor} if cursor else {})
            times.append(time.perf_counter() - t0)
            seen += len(page["tasks"])
            cursor = page.get("nextCursor")
            if cursor is None:
                break
        assert seen == count, (seen, count)
    results[name] = {
        "tasks": count,
        "created_per_s": round(count / created),
        "pages": len(times),
        "first_page_ms": round(times[0] * 1e3, 2),
        "last_page_ms": round(times[-1] * 1e3, 2),
        # single pages are noisy on a shared machine: compare the first and last ten too
        "first_10_median_ms": round(statistics.median(times[:10]) * 1e3, 2),
        "last_10_median_ms": round(statistics.median(times[-10:]) * 1e3, 2),
        "median_page_ms": round(statistics.median(times) * 1e3, 2),
    }
    figures = results[name]
    log(
        f"{name:>8}: {count:,} tasks created at {figures['created_per_s']:,}/s; {figures['pages']} pages "
        f"of 100, first {figures['first_page_ms']} ms, last {figures['last_page_ms']} ms; medians of the "
        f"first/last ten {figures['first_10_median_ms']}/{figures['last_10_median_ms']} ms"
    )


async def memory_per_task(count: int, results: dict[str, Any]) -> None:
    backend = MemoryTaskBackend()
    async with start_server(app, task_backend=backend) as running, open_memory_client(running) as client:
        for n in range(50):
            await task_round_trip(client, n)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(count):
            await task_round_trip(client, n)
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    per_task = round((after - before) / count)
    results["memory_per_finished_task_bytes"] = per_task
    log(f"  memory: {per_task:,} bytes held per finished task ({count:,} tasks, tracemalloc)")


V2_TASKS = {"extensions": {"io.modelcontextprotocol/tasks": {}}}


async def v2_round_trip(client: MemoryClient, n: int) -> None:
    """2026-07-28: tools/call (CreateTaskResult), then tasks/get in a tight loop until completed."""
    created = await client.request("tools/call", {"name": "add", "arguments": {"a": n, "b": 1}})
    for _ in range(1_000_000):
        got = await client.request("tasks/get", {"taskId": created["taskId"]})
        if got["status"] == "completed":
            assert got["result"]["structuredContent"] == {"result": n + 1}
            return
    raise AssertionError("the task did not complete")


async def versus_fastmcp(duration: float, results: dict[str, Any]) -> None:
    """The SEP-2663 pattern on ours (memory backend), and the same on FastMCP in its own process."""
    async with (
        start_server(app) as running,
        open_memory_client(running, protocol_version="2026-07-28", capabilities=V2_TASKS) as client,
    ):
        ours = await measure(client, v2_round_trip, duration)
    entry: dict[str, Any] = {"mcpvisor": ours}
    python = await trio.to_thread.run_sync(ensure_fastmcp_venv)
    if python is not None:
        script = str(HERE / "_baselines" / "fastmcp_task_bench.py")
        with trio.fail_after(300):
            out = await trio.run_process(
                [str(python), script, "--duration", str(duration)],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                cwd=HERE / "_baselines",
            )
        if out.returncode == 0:
            entry["fastmcp"] = json.loads(out.stdout.decode().strip().splitlines()[-1])
            entry["ours/fastmcp"] = round(ours["per_s"] / entry["fastmcp"]["per_s"], 2)
        else:
            log(f"the FastMCP side failed: {out.stderr.decode()[-2000:]}")
    results["vs_fastmcp_2026_07_28"] = entry
    theirs = entry.get("fastmcp")
    versus = (
        f"; FastMCP {theirs['per_s']:,}/s p50 {theirs['p50_us']} us ({entry['ours/fastmcp']}x)"
        if theirs
        else "; FastMCP not measured"
    )
    mine = f"ours {ours['per_s']:,}/s p50 {ours['p50_us']} us"
    log(f"2026-07-28 create + tasks/get until completed: {mine}{versus}")


FASTMCP_VENV = HERE / ".venv-fastmcp-tasks"
FASTMCP_PINS = ("fastmcp==4.1.4", "fastmcp-tasks==4.1.4")


def ensure_fastmcp_venv() -> Path | None:
    """The FastMCP tasks venv (benchmarks/.venv-fastmcp-tasks, apart from server.py's 4.1.6 one:
    fastmcp-tasks tops out at 4.1.4), given the pins when it lacks them."""
    python = FASTMCP_VENV / "bin" / "python"
    check = [str(python), "-c", "import fastmcp_tasks"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log(f"installing {' '.join(FASTMCP_PINS)} into {FASTMCP_VENV}")
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(FASTMCP_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *FASTMCP_PINS], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"could not set up FastMCP ({exc}): FastMCP side skipped")
        return None
    return python


async def run(
    args: argparse.Namespace, workdir: str, redis_port: int | None, results: dict[str, Any]
) -> None:
    backends = {"memory": "memory://", "sqlite": f"sqlite:///{workdir}/tasks.db"}
    if redis_port is not None:
        backends["redis"] = f"redis://127.0.0.1:{redis_port}/0"
    trips: dict[str, Any] = results.setdefault("round_trips", {})
    for name, url in backends.items():
        await round_trips(name, url, args.duration, trips)
    pages: dict[str, Any] = results.setdefault("list_10k", {})
    for name in ("memory", "sqlite"):
        url = backends[name] if name == "memory" else f"sqlite:///{workdir}/paging.db"
        await paging(name, url, args.tasks, pages)
    await memory_per_task(2000, results)
    await versus_fastmcp(args.duration, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per round-trip measurement")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks listed in pages of 100")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="mcpvisor-tasks-bench-")
    results: dict[str, Any] = {}
    redis = start_redis(workdir)
    try:
        trio.run(run, args, workdir, None if redis is None else redis[1], results)
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    out = {
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "duration_per_measurement_s": args.duration,
        **results,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "tasks.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
