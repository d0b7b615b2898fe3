"""Memory per dynamic child: 10,000 children under ONE DynamicSupervisor, two kinds of child.

    .venv/bin/python benchmarks/supervisor_memory.py [--children 10000]

- ``task``: the smallest supervised child, ``await stop_requested().wait()`` after ``started``;
- ``actor``: an idle actor from ``actor_child_spec`` (what a server's sessions are).

Each kind runs in a fresh subprocess and reports the RSS growth and the tracemalloc growth (a second,
traced run: tracing slows it down and costs memory of its own) divided by the number of children.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from typing import Any

import trio
import trio.testing
from mcpvisor.runtime.actors import actor_child_spec
from mcpvisor.supervisors import ChildSpec, open_dynamic_supervisor, stop_requested


class Idle:
    async def handle_call(self, msg: Any, _caller: Any) -> Any:
        return msg


async def _idle_task(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await stop_requested().wait()


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _measure(kind: str, n: int, traced: bool) -> dict[str, Any]:
    if kind == "task":
        specs = [ChildSpec(f"c{i}", _idle_task) for i in range(n + 1)]
    else:
        specs = [actor_child_spec(f"c{i}", Idle) for i in range(n + 1)]
    async with open_dynamic_supervisor(max_children=n + 1) as sup:
        await sup.start_child(specs[0])  # warm up: first-use allocations are not per child
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        if traced:
            tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0] if traced else _rss()
        for spec in specs[1:]:
            await sup.start_child(spec)
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] if traced else _rss()
        if traced:
            tracemalloc.stop()
        assert sup.count_children().active == n + 1
    return {"kind": kind, "children": n, "traced": traced, "bytes_per_child": (after - before) / n}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "TRACED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, traced = args.child
        print(json.dumps(trio.run(_measure, kind, args.children, traced == "1")))
        return
    print(f"{'child kind':8} {'RSS B/child':>12} {'traced B/child':>15} {'10k RSS MB':>11}")
    for kind in ("task", "actor"):
        figures = []
        for traced in ("0", "1"):
            cmd = [sys.executable, __file__, "--children", str(args.children), "--child", kind, traced]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            figures.append(json.loads(out.strip().splitlines()[-1])["bytes_per_child"])
        rss, traced_b = figures
        print(f"{kind:8} {rss:12,.0f} {traced_b:15,.0f} {rss * 10_000 / 1e6:11.1f}")


if __name__ == "__main__":
    main()
