"""Controllable children for the supervisor tests: each start is logged, and a test makes a running
child crash, return, or (on a stop request) obey, dawdle or ignore it."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
from mcpvisor.supervisors import ChildSpec, stop_requested
from trio.testing import MockClock


@pytest.fixture
def autojump_clock() -> MockClock:
    return MockClock(autojump_threshold=0)


class Crash(Exception):
    """The exception a test makes a child raise."""


class StartFailed(Exception):
    """The exception a child raises before ``task_status.started``."""


@attrs.define
class Incarnation:
    """One run of a child; the handle the child passes to ``started``."""

    child_id: str
    number: int
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _outcome: str | None = None

    def crash(self) -> None:
        self._outcome = "crash"
        self._wake.set()

    def finish(self) -> None:
        self._outcome = "normal"
        self._wake.set()


@attrs.define
class Children:
    """A family of controllable children sharing one log of ("start"|"stop"|"killed", id) entries."""

    log: list[tuple[str, str]] = attrs.field(factory=list)
    current: dict[str, Incarnation] = attrs.field(factory=dict)
    starts: dict[str, int] = attrs.field(factory=dict)
    #: child id -> how many of its next starts fail
    fail_starts: dict[str, int] = attrs.field(factory=dict)

    def spec(self, child_id: str, *, on_stop: str | float = "obey", **options: Any) -> ChildSpec:
        return ChildSpec(child_id, self._start_fn(child_id, on_stop), **options)

    def _start_fn(self, child_id: str, on_stop: str | float) -> Any:
        async def start(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            if self.fail_starts.get(child_id, 0) > 0:
                self.fail_starts[child_id] -= 1
                self.log.append(("failed", child_id))
                raise StartFailed(child_id)
            number = self.starts[child_id] = self.starts.get(child_id, 0) + 1
            me = Incarnation(child_id, number)
            self.current[child_id] = me
            self.log.append(("start", child_id))
            task_status.started(me)
            stop = stop_requested()
            try:
                async with trio.open_nursery() as nursery:

                    async def wake_on(event: trio.Event) -> None:
                        await event.wait()
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(wake_on, me._wake)
                    nursery.start_soon(wake_on, stop)
            except BaseException:  # only a cancellation (possibly grouped) can get here
                self.log.append(("killed", child_id))
                raise
            if me._outcome == "crash":
                self.log.append(("crash", child_id))
                raise Crash(child_id)
            if me._outcome == "normal":
                self.log.append(("return", child_id))
                return
            self.log.append(("asked", child_id))
            if on_stop == "ignore":
                try:
                    await trio.sleep_forever()
                except trio.Cancelled:
                    self.log.append(("killed", child_id))
                    raise
            if isinstance(on_stop, int | float) and not isinstance(on_stop, bool):
                try:
                    await trio.sleep(on_stop)
                except trio.Cancelled:
                    self.log.append(("killed", child_id))
                    raise
            self.log.append(("stop", child_id))

        return start

    def crash(self, child_id: str) -> None:
        self.current[child_id].crash()

    def finish(self, child_id: str) -> None:
        self.current[child_id].finish()

    def entries(self, kind: str) -> list[str]:
        return [cid for (k, cid) in self.log if k == kind]


async def settle() -> None:
    """Let every task run until all are blocked (the supervisor has reacted)."""
    await trio.testing.wait_all_tasks_blocked()
