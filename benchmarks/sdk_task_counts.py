"""Repeatable counts for the in-memory SDK path: spawned tasks, task steps and scheduler passes.

Wall-clock on a shared machine swings by tens of percent; these counts do not. A trio ``Instrument``
counts, over ``--n`` repetitions after a warm-up, per SDK ``ClientSession`` session open
(open_sdk_streams + initialize + close) and per ``counter`` / ``add`` call on one open session::

    python benchmarks/sdk_task_counts.py [--n 200]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))


class Counts(trio.abc.Instrument):
    """Spawned tasks, task steps (``before_task_step``) and scheduler passes (``before_io_wait``)."""

    def __init__(self) -> None:
        self.on = False
        self.spawned = self.steps = self.passes = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.spawned += 1

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.steps += 1

    def before_io_wait(self, timeout: float) -> None:
        if self.on:
            self.passes += 1

    def snapshot(self) -> tuple[int, int, int]:
        return self.spawned, self.steps, self.passes


async def measure(n: int) -> dict[str, dict[str, float]]:
    from server import running_port, sdk_client  # benchmarks/server.py

    counts = Counts()
    trio.lowlevel.add_instrument(counts)
    out: dict[str, dict[str, float]] = {}

    def per(label: str, before: tuple[int, int, int]) -> None:
        after = counts.snapshot()
        spawned, steps, passes = (a - b for a, b in zip(after, before, strict=True))
        out[label] = {"tasks_spawned": spawned / n, "task_steps": steps / n, "scheduler_passes": passes / n}

    async with running_port() as port:
        for _ in range(20):  # warm-up
            async with sdk_client(port):
                pass
        counts.on = True
        before = counts.snapshot()
        for _ in range(n):
            async with sdk_client(port):
                pass
        per("session open+initialize+close", before)
        counts.on = False
        async with sdk_client(port) as client:
            for tool in ("counter", "add"):
                for i in range(20):
                    await client.call_tool(tool, {"a": i, "b": 1} if tool == "add" else {})
                counts.on = True
                before = counts.snapshot()
                for i in range(n):
                    await client.call_tool(tool, {"a": i, "b": 1} if tool == "add" else {})
                per(f"{tool} call", before)
                counts.on = False
    trio.lowlevel.remove_instrument(counts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        print(json.dumps(trio.run(measure, args.n), indent=2))


if __name__ == "__main__":
    main()
