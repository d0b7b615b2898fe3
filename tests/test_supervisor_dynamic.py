"""DynamicSupervisor (OTP's simple_one_for_one): many children, started and stopped at run time."""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio
from _sup_children import Children, autojump_clock, settle
from mcpvisor.supervisors import (
    SHUTDOWN,
    AmbiguousChildId,
    ChildAlreadyPresent,
    ChildExited,
    ChildNotFound,
    ChildRestarted,
    ChildSpec,
    ChildStarted,
    DynamicSupervisor,
    MaxChildrenReached,
    Restart,
    Supervisor,
    SupervisorNotRunning,
    open_dynamic_supervisor,
    open_supervisor,
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
    assert stopped[0] == 0 and sorted(stopped[1:]) == list(range(1, n))  # then all the others
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


async def test_one_spec_is_started_many_times(autojump_clock: MockClock) -> None:
    """OTP's simple_one_for_one: one child spec, many children, each known by its handle (pid)."""
    kids = Children()
    spec = kids.spec("worker", restart=Restart.TEMPORARY)
    async with open_dynamic_supervisor(max_children=3) as sup:
        handles = [await sup.start_child(spec) for _ in range(3)]
        assert [h.number for h in handles] == [1, 2, 3]  # start_child still returns the child's handle
        assert [(r.id, r.handle) for r in sup.which_children()] == [("worker", h) for h in handles]
        with pytest.raises(MaxChildrenReached):
            await sup.start_child(spec)
        with pytest.raises(AmbiguousChildId, match="pass the handle"):
            await sup.terminate_child("worker")
        await sup.terminate_child(handles[1])  # the handle names exactly one of them
        assert [r.handle for r in sup.which_children()] == [handles[0], handles[2]]
        assert sup.which_child("worker") is handles[0] and sup.which_child("other") is None
        await sup.terminate_child(handles[1])  # OTP: ok for a child that is gone (issue 12)
        assert [r.handle for r in sup.which_children()] == [handles[0], handles[2]]
        handles.append(await sup.start_child(spec))
        assert sup.count_children().active == 3
    assert kids.log.count(("stop", "worker")) == 4


async def test_children_sharing_a_spec_restart_independently(autojump_clock: MockClock) -> None:
    restarted: list[object] = []
    crash_next: list[trio.Event] = []

    async def worker(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        me = trio.Event()
        crash_next.append(me)
        task_status.started(me)
        await me.wait()
        raise RuntimeError("crash")

    spec = ChildSpec("w", worker)  # PERMANENT: each child is restarted in its own place
    async with open_dynamic_supervisor(on_event=restarted.append) as sup:
        first = await sup.start_child(spec)
        second = await sup.start_child(spec)
        first.set()
        await settle()
        assert sum(isinstance(e, ChildRestarted) for e in restarted) == 1 and sup.count_children().active == 2
        rows = sup.which_children()
        assert rows[1].handle is second and rows[0].handle is crash_next[-1]  # the restart kept its place
        await sup.terminate_child(rows[0].handle)  # the new incarnation's handle names it
        assert [r.handle for r in sup.which_children()] == [second]
        await sup.terminate_child(first)  # a dead incarnation's handle: ok, as OTP for a dead pid
        assert [r.handle for r in sup.which_children()] == [second]


async def test_unique_ids_still_work_by_id_in_a_dynamic_supervisor(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_dynamic_supervisor() as sup:
        await sup.start_child(kids.spec("a", restart=Restart.TEMPORARY))
        await sup.start_child(kids.spec("b", restart=Restart.TEMPORARY))
        await sup.start_child(kids.spec("b", restart=Restart.TEMPORARY))
        await sup.terminate_child("a")
        with pytest.raises(AmbiguousChildId):
            await sup.terminate_child("b")
        await sup.terminate_child(sup.which_children()[0].handle)
        await sup.terminate_child("b")  # unique again
        assert sup.which_children() == []
    assert kids.entries("stop") == ["a", "b", "b"]


async def test_static_supervisor_still_rejects_duplicate_ids(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(ChildAlreadyPresent):
        Supervisor([kids.spec("a"), kids.spec("a")])
    async with open_supervisor([kids.spec("a")]) as sup:
        with pytest.raises(ChildAlreadyPresent):
            await sup.start_child(kids.spec("a"))
        with pytest.raises(ChildNotFound):
            await sup.terminate_child(sup.which_children()[0].handle)  # static children go by id only


async def test_a_dynamic_child_stays_small(autojump_clock: MockClock) -> None:
    """Guards the per-child footprint (about 3.2 KB traced with its trio task, 4.7 KB before it was
    trimmed): no start nursery kept alive, no event or context object nobody asked for."""
    import gc
    import tracemalloc

    async def idle(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()  # cancelled at shutdown (BRUTAL_KILL): asks for no stop event

    n = 2000
    specs = [ChildSpec(f"c{i}", idle, shutdown=0) for i in range(n + 1)]
    async with open_dynamic_supervisor() as sup:
        await sup.start_child(specs[0])
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for spec in specs[1:]:
                await sup.start_child(spec)
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            per_child = (tracemalloc.get_traced_memory()[0] - before) / n
        finally:
            tracemalloc.stop()
    assert per_child < 3600, f"{per_child:.0f} bytes per dynamic child"


async def test_a_child_starting_while_the_supervisor_stops_is_stopped_in_order(
    autojump_clock: MockClock,
) -> None:
    """A start_child in flight when the supervisor is told to stop completes, and its child then gets
    the stop request like the others (it used to be cancelled unasked, with no ChildExited)."""
    log: list[object] = []
    events: list[object] = []

    async def slow(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep(1)
        task_status.started("slow")
        try:
            await stop_requested().wait()
            log.append("stopped when asked")
        except trio.Cancelled:
            log.append("cancelled unasked")
            raise

    async with trio.open_nursery() as nursery:
        sup = await nursery.start(DynamicSupervisor(on_event=events.append))

        async def starter() -> None:
            log.append(await sup.start_child(ChildSpec("slow", slow)))

        nursery.start_soon(starter)
        await trio.sleep(0.5)
        sup.stop()
        assert await sup.wait_stopped() is SHUTDOWN
    assert log == ["slow", "stopped when asked"]
    assert ChildExited("dynamic_supervisor", "slow", SHUTDOWN) in events
    with pytest.raises(SupervisorNotRunning):
        await sup.start_child(ChildSpec("late", slow))


async def test_stopping_a_dynamic_supervisor_asks_all_children_at_once(autojump_clock: MockClock) -> None:
    """OTP's simple_one_for_one: the stop takes the longest grace period, not the sum of them."""
    log: list[tuple[str, float]] = []

    def child(seconds: float) -> Any:
        async def start(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await stop_requested().wait()
            try:
                await trio.sleep(seconds)
                log.append(("clean", trio.current_time() - t0))
            except trio.Cancelled:
                log.append(("killed", trio.current_time() - t0))
                raise

        return start

    async with open_dynamic_supervisor() as sup:
        for i in range(50):
            await sup.start_child(ChildSpec(f"quick{i}", child(1.0), shutdown=5.0))
        await sup.start_child(ChildSpec("stubborn", child(1000.0), shutdown=3.0))
        t0 = trio.current_time()
    assert trio.current_time() - t0 == 3.0
    assert sorted(log) == [("clean", 1.0)] * 50 + [("killed", 3.0)]


async def test_an_id_wins_over_a_string_handle(autojump_clock: MockClock) -> None:
    def child(handle: str) -> Any:
        async def start(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started(handle)
            await stop_requested().wait()

        return start

    async with open_dynamic_supervisor() as sup:
        await sup.start_child(ChildSpec("a", child("b")))
        await sup.start_child(ChildSpec("b", child("a")))
        await sup.terminate_child("a")  # the child with id "a", not the one whose handle is "a"
        assert [r.id for r in sup.which_children()] == ["b"]
        await sup.terminate_child("a")  # no id "a" left: now the handle "a" names child b
        assert sup.which_children() == []
