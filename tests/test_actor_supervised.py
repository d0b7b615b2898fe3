"""Actors as supervised children: the stop request, and (with a real Supervisor) restarts."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from mcpvisor.runtime.actors import ActorRef, Caller, run_actor
from mcpvisor.supervisors import NORMAL, SHUTDOWN, ExitReason, current_child
from mcpvisor.supervisors._child_context import enter_child_context


class Worker:
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def handle_call(self, msg: Any, caller: Caller) -> Any:
        if msg == "slow":
            await trio.sleep(1)
        self.log.append(msg)
        return msg

    async def terminate(self, reason: ExitReason) -> None:
        self.log.append(("terminate", reason))


async def _as_child(
    behaviour: object,
    returned: list[str],
    stop_event: object = None,
    *,
    task_status: trio.TaskStatus[tuple[ActorRef, Any]],
) -> None:
    """What a supervisor does for a child: a child context in the child's own task, then its start."""
    ctx = enter_child_context("worker")
    if stop_event is not None:
        ctx.stop = stop_event  # type: ignore[assignment]
    async with trio.open_nursery() as nursery:
        ref = await nursery.start(run_actor, behaviour)
        task_status.started((ref, ctx))
    returned.append("returned")


async def test_idle_supervised_actor_stops_on_the_stop_request_with_shutdown() -> None:
    log: list[Any] = []
    returned: list[str] = []
    async with trio.open_nursery() as nursery:
        ref, ctx = await nursery.start(_as_child, Worker(log), returned)
        assert await ref.call(1) == 1
        await trio.testing.wait_all_tasks_blocked()
        ctx.stop.set()
        assert await ref.wait_exit() is SHUTDOWN
    assert log == [1, ("terminate", SHUTDOWN)]
    assert returned == ["returned"]  # SHUTDOWN is an orderly exit: the task returns


async def test_busy_supervised_actor_finishes_its_message_then_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    returned: list[str] = []
    async with trio.open_nursery() as nursery:
        ref, ctx = await nursery.start(_as_child, Worker(log), returned)
        replies: list[Any] = []

        async def slow_call() -> None:
            replies.append(await ref.call("slow"))

        nursery.start_soon(slow_call)
        await trio.testing.wait_all_tasks_blocked()
        ctx.stop.set()
        assert await ref.wait_exit() is SHUTDOWN
    assert replies == ["slow"]
    assert log == ["slow", ("terminate", SHUTDOWN)]


async def test_messages_after_a_stop_request_still_wake_the_actor_safely() -> None:
    """A send racing with the stop event must not reschedule the actor twice."""
    log: list[Any] = []
    returned: list[str] = []
    async with trio.open_nursery() as nursery:
        ref, ctx = await nursery.start(_as_child, Worker(log), returned)
        await trio.testing.wait_all_tasks_blocked()
        ctx.stop.set()  # reschedules the parked actor...
        ref.send_nowait("late")  # ...and this send, before it runs, must not wake it again
        assert await ref.wait_exit() is SHUTDOWN
    assert log == [("terminate", SHUTDOWN)]


async def test_unsupervised_actor_has_no_child_context() -> None:
    class Probe:
        async def handle_call(self, msg: Any, caller: Caller) -> Any:
            return current_child()

    async with trio.open_nursery() as nursery:
        ref = await nursery.start(run_actor, Probe())
        assert await ref.call("?") is None
        await ref.stop()


class _OpaqueEvent:
    """An event whose waiters the actor cannot join: forces the watcher-task fallback."""

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner = trio.Event()

    def set(self) -> None:
        self._inner.set()

    def is_set(self) -> bool:
        return self._inner.is_set()

    async def wait(self) -> None:
        await self._inner.wait()


async def test_stop_request_through_the_watcher_fallback() -> None:
    log: list[Any] = []
    returned: list[str] = []
    async with trio.open_nursery() as nursery:
        ref, ctx = await nursery.start(_as_child, Worker(log), returned, _OpaqueEvent())
        assert ref._stop_tasks is None
        assert await ref.call(1) == 1
        await trio.testing.wait_all_tasks_blocked()
        ctx.stop.set()
        assert await ref.wait_exit() is SHUTDOWN
    assert log == [1, ("terminate", SHUTDOWN)]
    assert returned == ["returned"]


async def test_actor_child_spec_makes_a_fresh_behaviour_per_start_and_reregisters_its_name() -> None:
    from mcpvisor.runtime.actors import ActorExited, Registry, actor_child_spec
    from mcpvisor.supervisors import ChildSpec, Restart

    made: list[Worker] = []

    def make() -> Worker:
        made.append(Worker([]))
        return made[-1]

    registry = Registry()
    spec = actor_child_spec("w", make, restart=Restart.TRANSIENT, shutdown=2.0, name="w", registry=registry)
    assert isinstance(spec, ChildSpec)
    assert (spec.id, spec.restart, spec.shutdown) == ("w", Restart.TRANSIENT, 2.0)

    async def run_child(task_status: trio.TaskStatus[tuple[ActorRef, Any]]) -> None:
        ctx = enter_child_context(spec.id)  # what a supervisor does in the child's task
        handle = await nursery.start(spec.start)
        task_status.started((handle, ctx))

    async with trio.open_nursery() as nursery:
        first, _ = await nursery.start(run_child)
        assert registry.whereis("w") is first and len(made) == 1
        await first.stop()
        assert registry.whereis("w") is None
        second, _ = await nursery.start(run_child)  # a restart: the same spec started again
        assert second is not first and registry.whereis("w") is second
        assert len(made) == 2 and made[0] is not made[1]
        with pytest.raises(ActorExited):
            await first.call(1)
        assert await second.call(2) == 2
        await second.stop()
    assert made[1].log == [2, ("terminate", NORMAL)]
