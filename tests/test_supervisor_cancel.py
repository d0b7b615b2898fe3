"""A supervisor cancelled from outside stops its children the OTP way, then lets the Cancelled go on.

Outer cancellation (a ``move_on_after``, a cancelled parent nursery, Ctrl-C) is the supervisor being
terminated: each child is asked in reverse start order, waited for up to its ``shutdown``, then cancelled,
and the events report it, exactly as when the body of ``open_supervisor`` ends normally.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _sup_children import Children, autojump_clock
from mcpvisor.runtime.actors import actor_child_spec
from mcpvisor.supervisors import (
    BRUTAL_KILL,
    INFINITY,
    SHUTDOWN,
    ChildExited,
    ChildSpec,
    ChildType,
    DynamicSupervisor,
    ExitReason,
    Supervisor,
    SupervisorEvent,
    SupervisorStopped,
    open_dynamic_supervisor,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


def exits(events: list[SupervisorEvent]) -> list[tuple[str, ExitReason]]:
    return [(e.child_id, e.reason) for e in events if isinstance(e, ChildExited)]


def mixed(kids: Children) -> list[ChildSpec]:
    """Four policies; stopped in reverse: d at once, c after 3 s, b cleanly in 2 s, a at once."""
    return [
        kids.spec("a", shutdown=5.0),
        kids.spec("b", on_stop=2.0, shutdown=5.0),
        kids.spec("c", on_stop="ignore", shutdown=3.0),
        kids.spec("d", shutdown=BRUTAL_KILL),
    ]


def assert_mixed_stopped(kids: Children, events: list[SupervisorEvent], name: str = "supervisor") -> None:
    assert kids.log[4:] == [
        ("killed", "d"),
        ("asked", "c"),
        ("killed", "c"),
        ("asked", "b"),
        ("stop", "b"),
        ("asked", "a"),
        ("stop", "a"),
    ]
    assert exits(events) == [("d", SHUTDOWN), ("c", SHUTDOWN), ("b", SHUTDOWN), ("a", SHUTDOWN)]
    assert events[-1] == SupervisorStopped(name, SHUTDOWN)


async def test_move_on_after_stops_children_in_reverse_order(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []
    reached = False
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor(mixed(kids), on_event=events.append):
            await trio.sleep_forever()
        reached = True
    assert outer.cancelled_caught and not reached  # the Cancelled went on to the scope that made it
    assert_mixed_stopped(kids, events)
    assert trio.current_time() == pytest.approx(1.0 + 3.0 + 2.0)  # the grace periods, nothing more


async def test_cancelled_parent_nursery_stops_children_in_order(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []

    async def owner() -> None:
        async with open_supervisor(mixed(kids), on_event=events.append):
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(owner)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert nursery.cancel_scope.cancelled_caught
    assert_mixed_stopped(kids, events)


async def test_cancel_while_the_body_waits_in_a_handle_call(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor(
            [kids.spec("a"), kids.spec("b", on_stop=3.0)], on_event=events.append
        ) as sup:
            await sup.terminate_child("b")  # b cleans up for 3 s; the cancel at 1 s interrupts the wait
    assert outer.cancelled_caught
    assert kids.entries("asked") == ["b", "a"] and kids.entries("stop") == ["b", "a"]
    assert exits(events) == [("b", SHUTDOWN), ("a", SHUTDOWN)]
    assert trio.current_time() == pytest.approx(3.0)  # b was asked once, and still had its grace


async def test_infinity_children_are_waited_for_under_cancellation(autojump_clock: MockClock) -> None:
    kids = Children()
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor([kids.spec("slow", on_stop=100.0, shutdown=INFINITY)]):
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert kids.entries("stop") == ["slow"]
    assert trio.current_time() == pytest.approx(101.0)


async def test_cancel_during_start_stops_the_started_children(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []
    hung: list[str] = []

    async def never_starts(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await trio.sleep_forever()
        finally:
            hung.append("cancelled")

    specs = [kids.spec("a"), kids.spec("b", on_stop=1.0), ChildSpec("hang", never_starts)]
    with trio.move_on_after(2.0) as outer:
        async with open_supervisor(specs, on_event=events.append):
            pytest.fail("the body must not run: the start never finished")
    assert outer.cancelled_caught
    assert hung == ["cancelled"]
    assert kids.log[2:] == [("asked", "b"), ("stop", "b"), ("asked", "a"), ("stop", "a")]
    assert exits(events) == [("b", SHUTDOWN), ("a", SHUTDOWN)]
    assert trio.current_time() == pytest.approx(3.0)


async def test_cancel_during_a_hanging_restart_is_bounded(autojump_clock: MockClock) -> None:
    kids = Children()
    starts: list[int] = []

    async def hangs_on_restart(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        starts.append(1)
        if len(starts) > 1:
            await trio.sleep_forever()
        task_status.started()
        await trio.sleep(1.0)
        raise RuntimeError("crash")

    with trio.move_on_after(5.0) as outer:
        async with open_supervisor([kids.spec("a"), ChildSpec("h", hangs_on_restart)]):
            await trio.sleep_forever()
    assert outer.cancelled_caught and len(starts) == 2
    assert kids.entries("stop") == ["a"]
    assert trio.current_time() == pytest.approx(5.0)


async def test_cancelled_actor_children_terminate_with_shutdown(autojump_clock: MockClock) -> None:
    log: list[tuple[str, ExitReason]] = []

    class Behaviour:
        def __init__(self, name: str) -> None:
            self.name = name

        async def terminate(self, reason: ExitReason) -> None:
            log.append((self.name, reason))

    specs = [actor_child_spec(n, lambda n=n: Behaviour(n)) for n in ("x", "y")]  # type: ignore[misc]
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor(specs):
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert log == [("y", SHUTDOWN), ("x", SHUTDOWN)]


# ---- a supervisor nested in a supervisor -------------------------------------------------------


async def test_nested_supervisor_stops_its_children_in_order(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []
    sub_events: list[SupervisorEvent] = []
    sub = Supervisor(mixed(kids), name="sub", on_event=sub_events.append)
    specs = [ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=INFINITY), kids.spec("e")]
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor(specs, on_event=events.append):
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert kids.log[5:7] == [("asked", "e"), ("stop", "e")]  # e, started last, is stopped first
    assert_mixed_stopped(Children(log=kids.log[:4] + kids.log[7:]), sub_events, "sub")
    assert exits(events) == [("e", SHUTDOWN), ("sub", SHUTDOWN)]
    assert events[-1] == SupervisorStopped("supervisor", SHUTDOWN)


async def test_nested_supervisor_killed_after_its_grace_kills_the_rest(autojump_clock: MockClock) -> None:
    kids = Children()
    sub_events: list[SupervisorEvent] = []
    sub = Supervisor(
        [kids.spec("a", shutdown=50.0), kids.spec("b", on_stop=10.0, shutdown=50.0)],
        name="sub",
        on_event=sub_events.append,
    )
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor([ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=2.0)]):
            await trio.sleep_forever()
    assert outer.cancelled_caught
    # the parent gave sub 2 s: b was still cleaning up, then b and a were cancelled at once
    assert kids.log[2:] == [("asked", "b"), ("killed", "b"), ("killed", "a")]
    assert exits(sub_events) == [("b", SHUTDOWN), ("a", SHUTDOWN)]
    assert sub_events[-1] == SupervisorStopped("sub", SHUTDOWN)
    assert trio.current_time() == pytest.approx(3.0)


async def test_brutally_killed_nested_supervisor_cancels_its_children_at_once(
    autojump_clock: MockClock,
) -> None:
    kids = Children()
    sub = Supervisor([kids.spec("a", shutdown=50.0), kids.spec("b", shutdown=50.0)], name="sub")
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor([ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=BRUTAL_KILL)]):
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert kids.log[2:] == [("killed", "b"), ("killed", "a")]
    assert trio.current_time() == pytest.approx(1.0)


async def test_supervisor_started_in_a_plain_nursery_stops_in_order(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(Supervisor(mixed(kids), on_event=events.append))
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert_mixed_stopped(kids, events)


# ---- dynamic supervisors ------------------------------------------------------------------------


async def test_dynamic_supervisor_asks_all_at_once_under_cancellation(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []
    with trio.move_on_after(1.0) as outer:
        async with open_dynamic_supervisor(on_event=events.append) as sup:
            for spec in mixed(kids):
                await sup.start_child(spec)
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert sorted(kids.entries("asked")) == ["a", "b", "c"]
    assert sorted(kids.entries("stop")) == ["a", "b"] and sorted(kids.entries("killed")) == ["c", "d"]
    assert sorted(exits(events)) == [(n, SHUTDOWN) for n in "abcd"]
    assert events[-1] == SupervisorStopped("dynamic_supervisor", SHUTDOWN)
    assert trio.current_time() == pytest.approx(1.0 + 3.0)  # the longest grace period, not the sum


async def test_nested_dynamic_supervisor_under_a_cancelled_parent(autojump_clock: MockClock) -> None:
    kids = Children()
    sub_events: list[SupervisorEvent] = []
    dyn = DynamicSupervisor(name="dyn", on_event=sub_events.append)
    spec = ChildSpec("dyn", dyn, type=ChildType.SUPERVISOR, shutdown=INFINITY)
    with trio.move_on_after(1.0) as outer:
        async with open_supervisor([spec]) as sup:
            handle = sup.which_children()[0].handle
            await handle.start_child(kids.spec("a", on_stop=2.0))
            await handle.start_child(kids.spec("b", on_stop="ignore", shutdown=3.0))
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert kids.entries("stop") == ["a"] and kids.entries("killed") == ["b"]
    assert sorted(exits(sub_events)) == [("a", SHUTDOWN), ("b", SHUTDOWN)]
    assert sub_events[-1] == SupervisorStopped("dyn", SHUTDOWN)
    assert trio.current_time() == pytest.approx(4.0)
