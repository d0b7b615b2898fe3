"""The IdleReaper: closes sessions that stayed idle longer than their negotiated lifetime.

One task for all sessions, sleeping until the earliest deadline of a heap, instead of a timer task per
session: a task with its cancel scope is ~2 KB per idle session, and idle sessions are the ones a server
holds by the thousand. Activity only ever moves a deadline later, so the heap is corrected lazily: a
popped entry whose session was active since is pushed back at its real deadline. Entries of ended
sessions are dropped by a rebuild once they outnumber the live ones, so the heap stays proportional to
the sessions alive.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import trio

from ._session_slot import SessionSlot


class IdleReaper:
    """A supervisor child (start function); ``schedule`` a session when its lifetime is (re)set."""

    def __init__(self, close: Callable[[SessionSlot], None]) -> None:
        self._close = close
        self._heap: list[tuple[float, int, SessionSlot]] = []
        self._order = itertools.count()
        self._stale = 0
        self._target = math.inf
        self._wakeup = trio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def __repr__(self) -> str:  # the supervision log shows it as a child's handle
        return f"<IdleReaper watching {len(self._heap) - self._stale} lifetimes>"

    def schedule(self, slot: SessionSlot) -> None:
        """Watch ``slot`` from its last activity plus its lifetime (if that is sooner than watched)."""
        deadline = slot.last_activity + slot.idle_timeout
        if deadline >= slot.reaper_deadline:
            return
        if slot.reaper_deadline != math.inf:
            self._stale += 1
        self._push(slot, deadline)
        if deadline < self._target:
            self._wakeup.set()

    def forget(self, slot: SessionSlot) -> None:
        """The session ended: its entry is stale from now on."""
        if slot.reaper_deadline != math.inf:
            slot.reaper_deadline = math.inf
            self._stale += 1
            if self._stale > 64 and self._stale * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[0] == entry[2].reaper_deadline]
                heapq.heapify(self._heap)
                self._stale = 0

    def _push(self, slot: SessionSlot, deadline: float) -> None:
        slot.reaper_deadline = deadline
        heapq.heappush(self._heap, (deadline, next(self._order), slot))

    def _reap(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, slot = heapq.heappop(heap)
            if deadline != slot.reaper_deadline:
                self._stale = max(0, self._stale - 1)
                continue
            slot.reaper_deadline = math.inf
            if slot.closing:
                continue
            due = slot.last_activity + slot.idle_timeout
            if due > now:
                self._push(slot, due)
            elif slot.in_flight:
                self._push(slot, now + slot.idle_timeout)  # busy, not idle: look again later
            else:
                self._close(slot)

    async def __call__(self, *, task_status: trio.TaskStatus[IdleReaper] = trio.TASK_STATUS_IGNORED) -> None:
        # Stopped by cancellation (its child spec uses BRUTAL_KILL): there is nothing to clean up.
        task_status.started(self)
        while True:
            self._reap(trio.current_time())
            self._target = self._heap[0][0] if self._heap else math.inf
            self._wakeup = trio.Event()
            with trio.move_on_at(self._target):
                await self._wakeup.wait()
