"""Strategies, restart intensity, escalation and dynamic children (OTP supervisor_SUITE)."""

from __future__ import annotations

import pytest
import trio
from _sup_children import Children, autojump_clock, settle
from mcpvisor.supervisors import (
    INFINITY,
    ChildSpec,
    ChildType,
    MaxChildrenReached,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    open_dynamic_supervisor,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


async def test_one_for_all_stops_others_in_reverse_and_restarts_all_in_order(
    autojump_clock: MockClock,
) -> None:
    kids = Children()
    async with open_supervisor(
        [kids.spec("a"), kids.spec("b"), kids.spec("c")], strategy=Strategy.ONE_FOR_ALL
    ):
        kids.crash("b")
        await settle()
        assert kids.entries("stop") == ["c", "a"]
        assert kids.entries("start") == ["a", "b", "c", "a", "b", "c"]


async def test_rest_for_one_restarts_failed_and_later_children(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor(
        [kids.spec("a"), kids.spec("b"), kids.spec("c")], strategy=Strategy.REST_FOR_ONE
    ):
        kids.crash("b")
        await settle()
        assert kids.entries("stop") == ["c"]
        assert kids.entries("start") == ["a", "b", "c", "b", "c"]


async def test_intensity_window_is_inclusive(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor([kids.spec("a")], intensity=1, period=5.0):
            kids.crash("a")
            await settle()
            await trio.sleep(5.0)  # exactly period later: the first restart is still in the window
            kids.crash("a")
            await settle()
            pytest.fail("the second restart within the inclusive window must escalate")


async def test_restart_outside_period_does_not_escalate(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a")], intensity=1, period=5.0):
        kids.crash("a")
        await settle()
        await trio.sleep(5.001)
        kids.crash("a")
        await settle()
        assert kids.entries("start") == ["a", "a", "a"]


async def test_intensity_zero_escalates_on_first_crash(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor([kids.spec("a"), kids.spec("b")], intensity=0):
            kids.crash("a")
            await trio.sleep_forever()
    assert kids.entries("stop") == ["b"]


async def test_nested_supervisor_escalates_to_parent(autojump_clock: MockClock) -> None:
    kids = Children()
    sub = Supervisor([kids.spec("w")], intensity=0, name="sub")
    spec = ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=INFINITY)
    events: list[object] = []
    async with open_supervisor([spec], on_event=events.append):
        kids.crash("w")
        await settle()
        assert kids.entries("start") == ["w", "w"]  # the parent restarted a fresh sub-supervisor
    exits = [e for e in events if type(e).__name__ == "ChildExited" and e.child_id == "sub"]  # type: ignore[attr-defined]
    assert isinstance(exits[0].reason, RestartIntensityExceeded)


async def test_dynamic_supervisor_max_children(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_dynamic_supervisor(max_children=2) as sup:
        await sup.start_child(kids.spec("a", restart=Restart.TEMPORARY))
        await sup.start_child(kids.spec("b", restart=Restart.TEMPORARY))
        with pytest.raises(MaxChildrenReached, match="max_children=2"):
            await sup.start_child(kids.spec("c", restart=Restart.TEMPORARY))
        await sup.terminate_child("a")
        await sup.start_child(kids.spec("c", restart=Restart.TEMPORARY))
        assert [r.id for r in sup.which_children()] == ["b", "c"]
