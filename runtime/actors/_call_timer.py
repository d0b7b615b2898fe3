"""Call timeouts without a cancel scope per call.

``trio.move_on_after`` around every ``call`` costs about 6 us (a cancel scope, a deadline in the run's
heap), which was a third of a call round trip. Instead, one timer per trio run keeps the pending calls
grouped by their timeout value; inside a group, insertion order is deadline order (the clock only moves
forward), so an ``OrderedDict`` per group is a queue with O(1) removal when the reply comes first. A
system task sleeps until the earliest deadline and fails the calls that are due with ``CallTimeout``.

Time is the run's clock, so ``MockClock(autojump_threshold=0)`` jumps straight to a timeout, as it does
for ``trio.sleep``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING

import trio
from trio.lowlevel import RunVar, spawn_system_task

if TYPE_CHECKING:
    from ._ref import Caller

_timer: RunVar[CallTimer] = RunVar("mcpvisor_call_timer")


class CallTimer:
    """The pending calls of one trio run that have a timeout."""

    __slots__ = ("_groups", "_scope", "_target")

    def __init__(self) -> None:
        self._groups: dict[float, OrderedDict[Caller, float]] = {}
        self._target = math.inf  # when the timer task wakes next
        self._scope: trio.CancelScope | None = None

    def add(self, caller: Caller, timeout: float) -> None:
        deadline = trio.current_time() + timeout
        group = self._groups.get(timeout)
        if group is None:
            group = self._groups[timeout] = OrderedDict()
        group[caller] = deadline
        if deadline < self._target:
            # Rare: the timer sleeps past this deadline (or has nothing to wait for); wake it to look again.
            self._target = deadline
            if self._scope is not None:
                self._scope.deadline = deadline

    def discard(self, caller: Caller, timeout: float) -> None:
        group = self._groups.get(timeout)
        if group is not None:
            group.pop(caller, None)

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            target = math.inf
            for timeout, group in self._groups.items():
                while group:
                    caller, deadline = next(iter(group.items()))
                    if deadline > now:
                        target = min(target, deadline)
                        break
                    del group[caller]
                    caller._expire(timeout)
            self._target = target
            with trio.CancelScope(deadline=target) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None


def call_timer() -> CallTimer:
    """This run's timer, started on first use."""
    try:
        return _timer.get()
    except LookupError:
        timer = CallTimer()
        _timer.set(timer)
        spawn_system_task(timer.run, name="mcpvisor call timer")
        return timer
