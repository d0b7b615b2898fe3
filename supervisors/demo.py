"""A small supervision tree that crashes on purpose: ``python -m mcpvisor.supervisors.demo``.

A top supervisor runs two workers that crash at random-ish intervals and a sub-supervisor with a
flaky worker of its own; every start, crash, restart and escalation is printed as it happens.
The run ends by itself after ``--seconds`` (default 10) and exits 0.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import trio

from ._child_context import stop_requested
from ._events import ChildExited, ChildRestarted, ChildStarted, SupervisorEscalated, SupervisorStopped
from ._exit import is_abnormal
from ._spec import INFINITY, ChildSpec, ChildType
from ._supervisor import Supervisor, open_supervisor


def _worker(name: str, mean_life: float, rng: random.Random) -> Any:
    async def run(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(name)
        with trio.move_on_after(rng.expovariate(1.0 / mean_life)):
            await stop_requested().wait()
            return  # asked to stop: an orderly exit within the grace period
        raise RuntimeError(f"{name} crashed")

    return run


def _printer(started_at: float) -> Any:
    def show(event: object) -> None:
        t = trio.current_time() - started_at
        if isinstance(event, ChildRestarted):
            line = f"restarted {event.child_id}"
        elif isinstance(event, ChildStarted):
            line = f"started   {event.child_id}"
        elif isinstance(event, ChildExited):
            what = "crashed  " if is_abnormal(event.reason) else "stopped  "
            line = f"{what} {event.child_id}: {event.reason!r}"
        elif isinstance(event, SupervisorEscalated):
            line = f"ESCALATED {event.supervisor}: {event.error}"
        elif isinstance(event, SupervisorStopped):
            line = f"stopped   supervisor {event.supervisor}"
        else:
            return
        sup = getattr(event, "supervisor", "")
        print(f"{t:6.2f}s  [{sup}] {line}", flush=True)

    return show


async def main(seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    show = _printer(trio.current_time())
    sub = Supervisor(
        [ChildSpec("flaky", _worker("flaky", 0.8, rng), shutdown=1.0)],
        intensity=2,
        period=2.0,
        name="sub",
        on_event=show,
    )
    children = [
        ChildSpec("worker-1", _worker("worker-1", 2.0, rng), shutdown=1.0),
        ChildSpec("worker-2", _worker("worker-2", 3.0, rng), shutdown=1.0),
        ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=INFINITY),
    ]
    async with open_supervisor(children, intensity=20, period=5.0, name="top", on_event=show):
        await trio.sleep(seconds)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcpvisor.supervisors.demo", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for crash times")
    args = parser.parse_args(argv)
    trio.run(main, args.seconds, args.seed)
    print("demo finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
