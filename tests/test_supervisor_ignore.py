"""OTP's ``ignore``: a child whose start says "not now" (``raise Ignore`` before ``started``).

As in supervisor.erl: the start is not a failure; a permanent or transient child keeps its spec with no
handle (``which_children`` shows it not running, ``count_children`` counts its spec but not as active)
and ``restart_child`` may start it later; a temporary child, and any child of a dynamic supervisor, is
not kept at all. ``start_child`` returns None for it, and the event is ``ChildIgnored``.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _sup_children import Children, autojump_clock
from mcpvisor.runtime.actors import actor_child_spec
from mcpvisor.supervisors import (
    ChildIgnored,
    ChildSpec,
    ChildStarted,
    Ignore,
    Restart,
    Strategy,
    SupervisorEvent,
    open_dynamic_supervisor,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


class Moody:
    """A child that ignores its first ``ignores`` starts, then runs until stopped or crashed."""

    def __init__(self, ignores: int = 1) -> None:
        self.ignores = ignores
        self.starts = 0
        self.crash = trio.Event()

    async def __call__(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self.starts += 1
        if self.starts <= self.ignores:
            raise Ignore
        task_status.started(f"run {self.starts}")
        await self.crash.wait()
        self.crash = trio.Event()
        raise RuntimeError("crash")


async def test_an_ignored_child_keeps_its_spec_and_the_rest_start(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[SupervisorEvent] = []
    moody = Moody()
    specs = [kids.spec("a"), ChildSpec("m", moody), kids.spec("b")]
    async with open_supervisor(specs, on_event=events.append) as sup:
        assert kids.entries("start") == ["a", "b"]  # the ignore did not abort the start
        row = sup.which_children()[1]
        assert (row.id, row.handle, row.restart, row.running) == ("m", None, Restart.PERMANENT, False)
        counts = sup.count_children()
        assert (counts.specs, counts.active) == (3, 2)
        assert ChildIgnored("supervisor", "m") in events
        assert not any(isinstance(e, ChildStarted) and e.child_id == "m" for e in events)
        assert await sup.restart_child("m") == "run 2"  # started later, by hand, in its place
        assert [r.id for r in sup.which_children()] == ["a", "m", "b"]
        assert sup.count_children().active == 3


async def test_an_ignored_temporary_child_is_not_kept(autojump_clock: MockClock) -> None:
    kids = Children()
    specs = [kids.spec("a"), ChildSpec("t", Moody(), restart=Restart.TEMPORARY)]
    async with open_supervisor(specs) as sup:
        assert [r.id for r in sup.which_children()] == ["a"]
        assert await sup.start_child(ChildSpec("t2", Moody(), restart=Restart.TEMPORARY)) is None
        assert [r.id for r in sup.which_children()] == ["a"]


async def test_start_child_returns_none_and_keeps_a_permanent_spec(autojump_clock: MockClock) -> None:
    async with open_supervisor([]) as sup:
        assert await sup.start_child(ChildSpec("m", Moody())) is None
        assert sup.which_children()[0].running is False
        assert await sup.restart_child("m") == "run 2"


async def test_a_restart_that_ignores_leaves_the_child_not_running(autojump_clock: MockClock) -> None:
    moody = Moody(ignores=0)
    events: list[SupervisorEvent] = []
    async with open_supervisor([ChildSpec("m", moody)], on_event=events.append) as sup:
        moody.ignores = 2  # its next start (the restart) says "not now"
        moody.crash.set()
        await trio.sleep(1)
        assert sup.which_children()[0].running is False
        assert events[-1] == ChildIgnored("supervisor", "m")
        await trio.sleep(10)  # nothing retries an ignored child: it is not a failure
        assert moody.starts == 2
        assert await sup.restart_child("m") == "run 3"


async def test_a_group_restart_passes_over_an_ignored_sibling(autojump_clock: MockClock) -> None:
    kids = Children()
    moody = Moody(ignores=1)
    specs = [kids.spec("a"), ChildSpec("m", moody), kids.spec("b")]
    async with open_supervisor(specs, strategy=Strategy.ONE_FOR_ALL) as sup:
        kids.current["b"].crash()
        await trio.sleep(1)
        # all restarted in order, m included (its second start runs), as OTP's one_for_all restarts
        # every child with a spec, running or not
        assert kids.entries("start") == ["a", "b", "a", "b"]
        assert [r.running for r in sup.which_children()] == [True, True, True]
        assert moody.starts == 2


async def test_dynamic_supervisor_keeps_nothing_of_an_ignored_child(autojump_clock: MockClock) -> None:
    events: list[SupervisorEvent] = []
    async with open_dynamic_supervisor(max_children=1, on_event=events.append) as sup:
        assert await sup.start_child(ChildSpec("m", Moody())) is None
        assert sup.which_children() == [] and sup.count_children().specs == 0
        assert await sup.start_child(ChildSpec("m", Moody(ignores=0))) == "run 1"  # max_children not used up
        assert ChildIgnored("dynamic_supervisor", "m") in events


async def test_an_actor_whose_init_raises_ignore_is_ignored(autojump_clock: MockClock) -> None:
    class NotToday:
        async def init(self) -> None:
            raise Ignore

    async with open_supervisor([actor_child_spec("lazy", NotToday)]) as sup:
        assert sup.which_children()[0].running is False


async def test_ignore_after_started_is_a_crash(autojump_clock: MockClock) -> None:
    async def late(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        raise Ignore  # too late to decline: the child ran, so this is an exit like any other

    events: list[SupervisorEvent] = []
    with pytest.raises(Exception, match="restart intensity"):
        async with open_supervisor([ChildSpec("late", late)], intensity=1, on_event=events.append):
            await trio.sleep_forever()
    assert not any(isinstance(e, ChildIgnored) for e in events)
