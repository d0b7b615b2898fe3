"""Property-test your own supervision tree against the OTP model (the example of docs/testing.md).

Run it with ``pytest examples/test_my_tree.py``. Hypothesis starts the tree under a mock clock, crashes
children, lets them exit normally, moves time and calls the supervisor's API, and after every step
checks that the supervisor did exactly what an OTP supervisor would: which children stopped and
restarted, in what order, what the API returned, and when it gave up. The tree is a real one: an
actor, workers that stop cleanly when asked, and a nested supervisor with its default shutdown.
"""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import settings
from hypothesis import strategies as st
from mcpvisor.supervisors import ChildSpec, ChildType, Restart, Strategy, Supervisor, stop_requested

from mcpvisor import Behaviour, actor_child_spec
from mcpvisor.testing import (
    Command,
    SupervisedTree,
    SupervisionModel,
    SupervisionStateMachine,
    TreeHarness,
)


class Config(Behaviour):
    """An actor holding configuration the later children read, so they restart when it does."""

    async def init(self) -> None:
        self.values = {"greeting": "hello"}

    async def handle_call(self, message: Any, caller: Any) -> Any:
        return self.values.get(message)


async def heartbeat(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Periodic work that stops cleanly when asked. The machine moves the mock clock, so it ticks."""
    task_status.started()
    stop = stop_requested()
    beats = 0
    while not stop.is_set():
        with trio.move_on_after(1.0):
            await stop.wait()
        beats += 1


async def flusher(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Needs half a second to flush when asked to stop: its default 5 s grace covers that."""
    task_status.started()
    await stop_requested().wait()
    await trio.sleep(0.5)


async def reporter(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """A job that may finish on its own: TRANSIENT, so it is restarted only when it crashes."""
    task_status.started()
    await stop_requested().wait()


def my_tree(intensity: int) -> SupervisedTree:
    storage = Supervisor([ChildSpec("flusher", flusher), ChildSpec("index", flusher)], name="storage")
    return SupervisedTree(
        children=(
            actor_child_spec("config", Config),
            ChildSpec("heartbeat", heartbeat),
            ChildSpec("storage", storage, type=ChildType.SUPERVISOR),  # shutdown: INFINITY
            ChildSpec("reporter", reporter, restart=Restart.TRANSIENT),
        ),
        strategy=Strategy.REST_FOR_ONE,
        intensity=intensity,
        period=5.0,
    )


class MyTreeMachine(SupervisionStateMachine):
    def draw_tree(self, data: st.DataObject) -> SupervisedTree:
        # The children are fixed; let hypothesis vary the restart limit too.
        return my_tree(intensity=data.draw(st.integers(0, 3), label="intensity"))

    def after_command(self, command: Command, model: SupervisionModel, harness: TreeHarness) -> None:
        # A postcondition of our own: whenever the model says config runs, the actor answers.
        rows = {row.id: row for row in harness.call(harness.handle.which_children)}
        if model.is_running("config"):
            ref = rows["config"].handle
            assert harness.call(ref.call, "greeting") == "hello", f"config does not answer after {command}"


MyTreeMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
TestMyTree = MyTreeMachine.TestCase
