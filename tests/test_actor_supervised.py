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
    *,
    task_status: trio.TaskStatus[tuple[ActorRef, Any]],
) -> None:
    """What a supervisor does for a child: a child context in the child's own task, then its start."""
    ctx = enter_child_context("worker")
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
        ctx._ask_stop()
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
        ctx._ask_stop()
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
        ctx._ask_stop()  # reschedules the parked actor...
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


class SlowInit(Worker):
    async def init(self) -> None:
        await trio.sleep(1)


async def test_stop_requested_while_init_runs_stops_the_actor_once_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[Any] = []
    async with trio.open_nursery() as nursery:
        ctx = None

        async def child(*, task_status: trio.TaskStatus[ActorRef]) -> None:
            nonlocal ctx
            ctx = enter_child_context("worker")
            nursery.start_soon(ask_soon)
            await run_actor(SlowInit(log), task_status=task_status)

        async def ask_soon() -> None:
            await trio.sleep(0.5)  # init is still running
            assert ctx is not None
            ctx._ask_stop()

        ref = await nursery.start(child)
        assert await ref.wait_exit() is SHUTDOWN
    assert log == [("terminate", SHUTDOWN)]


async def test_a_supervised_actor_costs_no_stop_event() -> None:
    """The stop request reaches an actor through ``request_stop``, never through a per-actor event."""
    log: list[Any] = []
    returned: list[str] = []
    async with trio.open_nursery() as nursery:
        ref, ctx = await nursery.start(_as_child, Worker(log), returned)
        assert ctx._stop is None  # nobody made the event
        ctx._ask_stop()
        assert await ref.wait_exit() is SHUTDOWN
        assert ctx.stop.is_set()  # made on demand, already set
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
