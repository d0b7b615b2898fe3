"""The rest of OTP supervisor_SUITE's behaviour list: the child API on a static supervisor, INFINITY
shutdown, strategies x restart types, significant children, escalation up a tree, start failures."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _sup_children import Children, Crash, StartFailed, autojump_clock, settle
from mcpvisor.supervisors import (
    BRUTAL_KILL,
    INFINITY,
    NORMAL,
    SHUTDOWN,
    AutoShutdown,
    ChildExited,
    ChildNotFound,
    ChildSpec,
    ChildStartError,
    ChildStillRunning,
    ChildType,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    SupervisorEscalated,
    open_dynamic_supervisor,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


# ---- shutdown ------------------------------------------------------------------------------------


async def test_infinity_shutdown_waits_as_long_as_the_child_takes(autojump_clock: MockClock) -> None:
    kids = Children()
    start = trio.current_time()
    async with open_supervisor([kids.spec("a", on_stop=10_000.0, shutdown=INFINITY)]):
        pass
    assert kids.entries("stop") == ["a"] and kids.entries("killed") == []
    assert trio.current_time() - start == pytest.approx(10_000.0)


async def test_infinity_shutdown_of_a_nested_supervisor_stops_its_tree_in_order(
    autojump_clock: MockClock,
) -> None:
    kids = Children()
    sub = Supervisor([kids.spec("x", on_stop=1.0), kids.spec("y", on_stop=1.0)], name="sub")
    specs = [kids.spec("a"), ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=INFINITY)]
    async with open_supervisor(specs):
        assert kids.entries("start") == ["a", "x", "y"]
    assert kids.entries("stop") == ["y", "x", "a"]
    assert kids.entries("killed") == []


# ---- terminate_child / restart_child / delete_child on a static supervisor ------------------------


async def test_terminate_child_keeps_the_spec_and_does_not_restart(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[object] = []
    async with open_supervisor([kids.spec("a"), kids.spec("b")], on_event=events.append) as sup:
        await sup.terminate_child("a")
        await settle()
        assert kids.entries("stop") == ["a"]
        assert kids.entries("start") == ["a", "b"]  # a terminated child is not restarted
        rows = sup.which_children()
        assert [(r.id, r.running, r.handle) for r in rows] == [
            ("a", False, None),
            ("b", True, rows[1].handle),
        ]
        assert sup.count_children().active == 1
        await sup.terminate_child("a")  # terminating a stopped child is fine (OTP: ok)
        assert ChildExited("supervisor", "a", SHUTDOWN) in events


async def test_restart_child_starts_a_terminated_child_again_in_its_place(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b")]) as sup:
        await sup.terminate_child("a")
        handle = await sup.restart_child("a")
        assert handle is kids.current["a"] and handle.number == 2
        assert [(r.id, r.running) for r in sup.which_children()] == [("a", True), ("b", True)]
        kids.crash("a")  # the restarted child is supervised like any other
        await settle()
        assert kids.starts["a"] == 3
    assert kids.entries("stop") == ["a", "b", "a"]  # the terminate, then list order reversed


async def test_restart_child_of_a_running_child_raises_child_still_running(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a")]) as sup:
        with pytest.raises(ChildStillRunning, match="terminate_child"):
            await sup.restart_child("a")
        assert kids.entries("start") == ["a"]


async def test_delete_child_of_a_running_child_raises_child_still_running(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b")]) as sup:
        with pytest.raises(ChildStillRunning):
            await sup.delete_child("a")
        assert [r.id for r in sup.which_children()] == ["a", "b"]


async def test_delete_child_removes_a_terminated_spec(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b")]) as sup:
        await sup.terminate_child("a")
        await sup.delete_child("a")
        assert [r.id for r in sup.which_children()] == ["b"]
        with pytest.raises(ChildNotFound):
            await sup.restart_child("a")
        with pytest.raises(ChildNotFound):
            await sup.terminate_child("a")
        with pytest.raises(ChildNotFound):
            await sup.delete_child("a")
        await sup.start_child(kids.spec("a"))  # the id is free again; it goes to the end
        assert [r.id for r in sup.which_children()] == ["b", "a"]


async def test_terminate_child_of_a_temporary_child_forgets_it(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("t", restart=Restart.TEMPORARY), kids.spec("a")]) as sup:
        await sup.terminate_child("t")
        assert [r.id for r in sup.which_children()] == ["a"]


async def test_started_child_joins_the_static_supervisor_and_is_restarted(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a")], strategy=Strategy.REST_FOR_ONE) as sup:
        await sup.start_child(kids.spec("b"))
        kids.crash("a")
        await settle()
        assert kids.entries("start") == ["a", "b", "a", "b"]  # b came after a, so rest_for_one restarts it
        assert kids.entries("stop") == ["b"]


# ---- strategies x restart types -------------------------------------------------------------------


async def test_one_for_all_restarts_everyone_when_a_transient_child_crashes(
    autojump_clock: MockClock,
) -> None:
    kids = Children()
    specs = [kids.spec("a"), kids.spec("t", restart=Restart.TRANSIENT), kids.spec("c")]
    async with open_supervisor(specs, strategy=Strategy.ONE_FOR_ALL):
        kids.crash("t")
        await settle()
        assert kids.entries("stop") == ["c", "a"]
        assert kids.entries("start") == ["a", "t", "c", "a", "t", "c"]


async def test_one_for_all_ignores_a_transient_child_exiting_normally(autojump_clock: MockClock) -> None:
    kids = Children()
    specs = [kids.spec("a"), kids.spec("t", restart=Restart.TRANSIENT), kids.spec("c")]
    async with open_supervisor(specs, strategy=Strategy.ONE_FOR_ALL) as sup:
        kids.finish("t")
        await settle()
        assert kids.entries("stop") == []
        assert kids.entries("start") == ["a", "t", "c"]
        assert [(r.id, r.running) for r in sup.which_children()] == [("a", True), ("t", False), ("c", True)]


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_temporary_siblings_stopped_by_a_group_restart_are_removed(
    autojump_clock: MockClock, strategy: Strategy
) -> None:
    kids = Children()
    specs = [
        kids.spec("a"),
        kids.spec("t1", restart=Restart.TEMPORARY),
        kids.spec("b"),
        kids.spec("t2", restart=Restart.TEMPORARY),
    ]
    async with open_supervisor(specs, strategy=strategy) as sup:
        kids.crash("b")
        await settle()
        if strategy is Strategy.ONE_FOR_ALL:
            assert kids.entries("stop") == ["t2", "t1", "a"]
            assert kids.entries("start")[4:] == ["a", "b"]
            assert [r.id for r in sup.which_children()] == ["a", "b"]
        else:
            assert kids.entries("stop") == ["t2"]
            assert kids.entries("start")[4:] == ["b"]
            assert [r.id for r in sup.which_children()] == ["a", "t1", "b"]


# ---- significant children and auto_shutdown -------------------------------------------------------


async def test_significant_transient_crash_is_restarted_not_a_shutdown(autojump_clock: MockClock) -> None:
    kids = Children()
    specs = [kids.spec("a"), kids.spec("s", restart=Restart.TRANSIENT, significant=True)]
    async with open_supervisor(specs, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT) as sup:
        kids.crash("s")
        await settle()
        assert kids.entries("start") == ["a", "s", "s"]
        assert sup._run.running


async def test_terminate_child_of_a_significant_child_does_not_shut_down(autojump_clock: MockClock) -> None:
    """OTP: only a significant child exiting *by itself* triggers auto_shutdown."""
    kids = Children()
    specs = [kids.spec("a"), kids.spec("s", restart=Restart.TRANSIENT, significant=True)]
    async with open_supervisor(specs, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT) as sup:
        await sup.terminate_child("s")
        await settle()
        assert sup._run.running and kids.entries("stop") == ["s"]


async def test_never_refuses_a_significant_child(autojump_clock: MockClock) -> None:
    # OTP: bad_combination (issue 12; this test asserted the old lenient behaviour before)
    kids = Children()
    specs = [kids.spec("a"), kids.spec("s", restart=Restart.TEMPORARY, significant=True)]
    with pytest.raises(ValueError, match="bad_combination"):
        async with open_supervisor(specs, auto_shutdown=AutoShutdown.NEVER):
            pass
    assert kids.log == []


async def test_auto_shutdown_of_a_nested_supervisor_is_a_normal_exit_for_its_parent(
    autojump_clock: MockClock,
) -> None:
    kids = Children()
    sub = Supervisor(
        [kids.spec("x"), kids.spec("s", restart=Restart.TEMPORARY, significant=True)],
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
        name="sub",
    )
    spec = ChildSpec("sub", sub, restart=Restart.TRANSIENT, type=ChildType.SUPERVISOR, shutdown=INFINITY)
    events: list[object] = []
    async with open_supervisor([kids.spec("a"), spec], on_event=events.append) as sup:
        kids.finish("s")
        await settle()
        assert kids.entries("stop") == ["x"]
        assert [(r.id, r.running) for r in sup.which_children()] == [("a", True), ("sub", False)]
    assert ChildExited("supervisor", "sub", NORMAL) in events


# ---- escalation -----------------------------------------------------------------------------------


async def test_escalation_travels_up_a_tree_to_the_outermost_async_with(autojump_clock: MockClock) -> None:
    kids = Children()
    leaf = Supervisor([kids.spec("w")], intensity=0, name="leaf")
    mid = Supervisor(
        [ChildSpec("leaf", leaf, type=ChildType.SUPERVISOR, shutdown=INFINITY)], intensity=0, name="mid"
    )
    specs = [kids.spec("a"), ChildSpec("mid", mid, type=ChildType.SUPERVISOR, shutdown=INFINITY)]
    events: list[object] = []
    with pytest.raises(RestartIntensityExceeded) as info:
        async with open_supervisor(specs, intensity=0, name="top", on_event=events.append):
            kids.crash("w")
            await trio.sleep_forever()
    assert info.value.supervisor == "top"
    (mid_reason,) = info.value.reasons
    assert isinstance(mid_reason, RestartIntensityExceeded) and mid_reason.supervisor == "mid"
    (leaf_reason,) = mid_reason.reasons
    assert isinstance(leaf_reason, RestartIntensityExceeded) and leaf_reason.supervisor == "leaf"
    assert isinstance(leaf_reason.reasons[0], Crash)
    assert kids.entries("stop") == ["a"]
    assert [type(e) for e in events if isinstance(e, SupervisorEscalated)] == [SupervisorEscalated]


async def test_parent_counts_a_child_supervisor_escalation_as_one_restart(autojump_clock: MockClock) -> None:
    kids = Children()
    sub = Supervisor([kids.spec("w")], intensity=0, name="sub")
    spec = ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=INFINITY)
    with pytest.raises(RestartIntensityExceeded) as info:
        async with open_supervisor([spec], intensity=1, period=100.0):
            kids.crash("w")
            await settle()
            assert kids.starts["w"] == 2  # a fresh sub-supervisor started a fresh w
            kids.crash("w")
            await trio.sleep_forever()
    assert len(info.value.reasons) == 2


# ---- start failures -------------------------------------------------------------------------------


async def test_start_failure_stops_started_ones_in_reverse_with_their_shutdown_policies(
    autojump_clock: MockClock,
) -> None:
    kids = Children(fail_starts={"c": 1})
    specs = [kids.spec("a", on_stop=1.0), kids.spec("b", on_stop="ignore", shutdown=2.0), kids.spec("c")]
    t0 = trio.current_time()
    with pytest.raises(ChildStartError):
        async with open_supervisor(specs):
            pytest.fail("the body must not run")
    assert kids.entries("killed") == ["b"] and kids.entries("stop") == ["a"]
    assert trio.current_time() - t0 == pytest.approx(3.0)


async def test_child_returning_before_started_fails_the_start(autojump_clock: MockClock) -> None:
    async def never_started(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        return None

    kids = Children()
    with pytest.raises(ChildStartError) as info:
        async with open_supervisor([kids.spec("a"), ChildSpec("bad", never_started)]):
            pytest.fail("the body must not run")
    assert info.value.child_id == "bad"
    assert kids.entries("stop") == ["a"]


async def test_nested_start_failure_aborts_the_parent_start(autojump_clock: MockClock) -> None:
    kids = Children(fail_starts={"y": 1})
    sub = Supervisor([kids.spec("x"), kids.spec("y")], name="sub")
    specs = [
        kids.spec("a"),
        ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=INFINITY),
        kids.spec("b"),
    ]
    with pytest.raises(ChildStartError) as info:
        async with open_supervisor(specs):
            pytest.fail("the body must not run")
    assert info.value.child_id == "sub"
    inner = info.value.__cause__
    assert isinstance(inner, ChildStartError) and inner.child_id == "y"
    assert isinstance(inner.__cause__, StartFailed)
    assert kids.entries("start") == ["a", "x"]
    assert kids.entries("stop") == ["x", "a"]


# ---- a child that fails while it is being stopped ---------------------------------------------------


async def _fails_when_cancelled(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
    """A child whose own nursery raises an error while it is cancelled: trio then hands its scope an
    exception group of that error and the Cancelled, which must stay this child's business."""

    async def cleanup_fails() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            raise ValueError("cleanup failed") from None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cleanup_fails)
        nursery.start_soon(trio.sleep_forever)
        task_status.started()


@pytest.mark.parametrize("shutdown", [BRUTAL_KILL, 1.0])
async def test_a_child_failing_while_it_is_killed_does_not_take_the_supervisor_down(
    autojump_clock: MockClock, shutdown: float
) -> None:
    kids = Children()
    events: list[object] = []
    specs = [kids.spec("a"), ChildSpec("c", _fails_when_cancelled, shutdown=shutdown)]
    async with open_supervisor(specs, on_event=events.append) as sup:
        await sup.terminate_child("c")
        assert [(r.id, r.running) for r in sup.which_children()] == [("a", True), ("c", False)]
        (exit,) = [e for e in events if isinstance(e, ChildExited) and e.child_id == "c"]
        assert isinstance(exit.reason, ExceptionGroup)  # the real reason, not SHUTDOWN
        assert exit.reason.subgroup(ValueError) is not None
        assert kids.entries("start") == ["a"]  # terminated: not restarted, and a is untouched
    assert kids.entries("stop") == ["a"]


# ---- restarts whose starts fail (one_for_all_other_child_fails_restart, ...) -----------------------


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
async def test_another_child_failing_to_restart_is_retried_and_counted(
    autojump_clock: MockClock, strategy: Strategy
) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b"), kids.spec("c")], strategy=strategy) as sup:
        kids.fail_starts["c"] = 1
        kids.crash("b")
        await settle()
        assert kids.entries("failed") == ["c"]
        assert all(r.running for r in sup.which_children())
        assert len(sup._run.restarts) == 2  # the crash and the failed start
        assert kids.starts["c"] == 2


async def test_another_child_failing_to_restart_forever_escalates(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(RestartIntensityExceeded) as info:
        async with open_supervisor(
            [kids.spec("a"), kids.spec("b"), kids.spec("c")], strategy=Strategy.ONE_FOR_ALL, intensity=3
        ):
            kids.fail_starts["c"] = 100
            kids.crash("b")
            await trio.sleep_forever()
    assert kids.entries("failed") == ["c"] * 3
    assert isinstance(info.value.reasons[0], Crash) and isinstance(info.value.reasons[-1], StartFailed)
    # the crash stops c and a; each failed group start stops what it started (b, a) before retrying,
    # and the escalation after the third failure stops the last b and a
    assert kids.entries("stop") == ["c", "a"] + ["b", "a"] * 3


async def test_dynamic_supervisor_escalates(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(RestartIntensityExceeded):
        async with open_dynamic_supervisor(intensity=1) as sup:
            await sup.start_child(kids.spec("x"))
            await sup.start_child(kids.spec("y"))
            kids.crash("x")
            await settle()
            kids.crash("y")
            await trio.sleep_forever()
    assert kids.entries("start") == ["x", "y", "x"]
    assert kids.entries("stop") == ["x"]
