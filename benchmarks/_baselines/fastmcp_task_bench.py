"""The FastMCP side of benchmarks/tasks.py: run with the FastMCP venv's Python, prints JSON.

FastMCP 4.1.4 with fastmcp-tasks 4.1.4 (SEP-2663, the 2026-07-28 tasks extension; Docket on its
``memory://`` backend), driven in-process by its own ``Client`` (asyncio only, hence this process).
The access pattern is the one benchmarks/tasks.py uses on mcpvisor's 2026-07-28 extension: a
``tools/call`` of a task tool (a CreateTaskResult), then ``tasks/get`` in a tight loop (no sleeps)
until the task is completed, its result inlined. Per round trip: that whole sequence.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from fastmcp import Client, FastMCP
from fastmcp_tasks import TasksExtension, call_tool_task
from fastmcp_tasks.client import _send_get


def build() -> FastMCP:
    mcp = FastMCP("tasks-bench")
    mcp.add_extension(TasksExtension())

    @mcp.tool(task=True)
    async def add(a: int, b: int) -> int:
        return a + b

    return mcp


async def round_trip(client: Client, n: int) -> int:
    task = await call_tool_task(client, "add", {"a": n, "b": 1})
    polls = 0
    while True:
        polls += 1
        got = await _send_get(client.session, task.task_id)
        if got.status in ("completed", "failed", "cancelled"):
            assert got.status == "completed", got
            return polls


async def main(duration: float) -> dict[str, Any]:
    async with Client(build()) as client:
        for n in range(50):
            await round_trip(client, n)
        latencies: list[float] = []
        polls: list[int] = []
        start = time.perf_counter()
        while time.perf_counter() - start < duration:
            t0 = time.perf_counter()
            polls.append(await round_trip(client, len(latencies)))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "per_s": round(len(latencies) / elapsed),
        "p50_us": round(statistics.median(latencies) * 1e6),
        "p99_us": round(latencies[int(len(latencies) * 0.99) - 1] * 1e6),
        "polls_per_task": round(statistics.mean(polls), 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=2.0)
    print(json.dumps(asyncio.run(main(parser.parse_args().duration))))
