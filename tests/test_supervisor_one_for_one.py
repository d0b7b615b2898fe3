"""one_for_one, start/stop order, start failures and restart types (OTP supervisor_SUITE's basics)."""

from __future__ import annotations

import pytest
import trio
from _sup_children import Children, Crash, StartFailed, autojump_clock, settle
from mcpvisor.supervisors import (
    NORMAL,
    SHUTDOWN,
    ChildExited,
    ChildStartError,
    Restart,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


async def test_children_start_in_list_order(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b"), kids.spec("c")]) as sup:
        assert kids.entries("start") == ["a", "b", "c"]
        assert [r.id for r in sup.which_children()] == ["a", "b", "c"]


async def test_children_stop_in_reverse_order_when_the_body_ends(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b"), kids.spec("c")]):
        pass
    assert kids.entries("stop") == ["c", "b", "a"]


async def test_start_failure_stops_started_children_in_reverse_and_raises(autojump_clock: MockClock) -> None:
    kids = Children(fail_starts={"c": 1})
    specs = [kids.spec("a"), kids.spec("b"), kids.spec("c"), kids.spec("d")]
    with pytest.raises(ChildStartError) as info:
        async with open_supervisor(specs):
            pytest.fail("the body must not run when a child fails to start")
    assert info.value.child_id == "c"
    assert isinstance(info.value.__cause__, StartFailed)
    assert kids.entries("start") == ["a", "b"]
    assert kids.entries("stop") == ["b", "a"]


async def test_one_for_one_restarts_only_the_crashed_child(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b"), kids.spec("c")]) as sup:
        first = sup.which_children()[1].handle
        kids.crash("b")
        await settle()
        assert kids.entries("start") == ["a", "b", "c", "b"]
        assert kids.entries("stop") == []
        assert sup.which_children()[1].handle is not first
        assert [r.id for r in sup.which_children()] == ["a", "b", "c"]


async def test_permanent_child_restarted_after_normal_exit(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a", restart=Restart.PERMANENT)]):
        kids.finish("a")
        await settle()
        assert kids.entries("start") == ["a", "a"]


async def test_transient_child_restarted_after_crash_only(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("t", restart=Restart.TRANSIENT)]) as sup:
        kids.crash("t")
        await settle()
        assert kids.entries("start") == ["t", "t"]
        kids.finish("t")
        await settle()
        assert kids.entries("start") == ["t", "t"]
        (row,) = sup.which_children()
        assert row.id == "t" and row.handle is None and not row.running
        assert sup.which_child("t") is None  # what which_children says of it, by id


async def test_which_child_follows_restarts(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("b")]) as sup:
        first = sup.which_child("b")
        assert first is sup.which_children()[1].handle and first is not None
        kids.crash("b")
        await settle()
        assert sup.which_child("b") is sup.which_children()[1].handle
        assert sup.which_child("b") is not first
        assert sup.which_child("nope") is None


async def test_temporary_child_never_restarted_and_removed(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("x", restart=Restart.TEMPORARY), kids.spec("a")]) as sup:
        kids.crash("x")
        await settle()
        assert kids.entries("start") == ["x", "a"]
        assert [r.id for r in sup.which_children()] == ["a"]


async def test_exit_reasons_reported_normal_crash_shutdown(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[object] = []
    specs = [kids.spec("n", restart=Restart.TRANSIENT), kids.spec("c"), kids.spec("s")]
    async with open_supervisor(specs, on_event=events.append):
        kids.finish("n")
        await settle()
        kids.crash("c")
        await settle()
    reasons = {
        (e.child_id, type(e.reason).__name__ if isinstance(e.reason, BaseException) else e.reason)
        for e in events
        if isinstance(e, ChildExited)
    }
    assert ("n", NORMAL) in reasons
    assert ("c", Crash.__name__) in reasons
    assert ("s", SHUTDOWN) in reasons


async def test_count_children(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a"), kids.spec("t", restart=Restart.TRANSIENT)]) as sup:
        kids.finish("t")
        await settle()
        counts = sup.count_children()
        assert (counts.specs, counts.active, counts.supervisors, counts.workers) == (2, 1, 0, 2)


async def test_body_error_propagates_bare_after_children_stop(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(KeyError):
        async with open_supervisor([kids.spec("a"), kids.spec("b")]):
            raise KeyError("body")
    assert kids.entries("stop") == ["b", "a"]


async def test_supervisor_usable_after_trio_checkpoint(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a")]) as sup:
        await trio.sleep(1000)
        assert sup.which_children()[0].running
