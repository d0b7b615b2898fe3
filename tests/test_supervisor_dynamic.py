"""DynamicSupervisor (OTP's simple_one_for_one): many children, started and stopped at run time."""

from __future__ import annotations

import time
from typing import Any

import trio
from _sup_children import autojump_clock
from mcpvisor.supervisors import (
    ChildSpec,
    ChildStarted,
    Restart,
    open_dynamic_supervisor,
    stop_requested,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


async def test_ten_thousand_children_start_and_stop_quickly(autojump_clock: MockClock) -> None:
    n = 10_000
    stopped: list[int] = []

    async def idle(number: int, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(number)
        await stop_requested().wait()
        stopped.append(number)

    t0 = time.perf_counter()
    async with open_dynamic_supervisor(max_children=n) as sup:
        for i in range(n):
            assert await sup.start_child(ChildSpec(f"c{i}", lambda i=i, **kw: idle(i, **kw))) == i
        counts = sup.count_children()
        assert (counts.specs, counts.active, counts.workers) == (n, n, n)
        await sup.terminate_child("c0")
        assert sup.count_children().active == n - 1
    elapsed = time.perf_counter() - t0
    assert stopped[0] == 0 and stopped[1:] == list(range(n - 1, 0, -1))  # then the rest in reverse order
    assert elapsed < 10.0, f"10k children took {elapsed:.1f}s to start and stop"


async def test_temporary_children_are_forgotten_when_they_exit(autojump_clock: MockClock) -> None:
    events: list[Any] = []

    async def brief(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(1)

    async with open_dynamic_supervisor(on_event=events.append) as sup:
        for i in range(100):
            await sup.start_child(ChildSpec(f"t{i}", brief, restart=Restart.TEMPORARY))
        assert sup.count_children().active == 100
        await trio.sleep(2)
        assert sup.which_children() == [] and sup.count_children().specs == 0
    assert sum(isinstance(e, ChildStarted) for e in events) == 100
