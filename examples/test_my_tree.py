"""Property-test your own supervision tree against the OTP model (the example of docs/testing.md).

Run it with ``pytest examples/test_my_tree.py``. Hypothesis starts the tree under a mock clock, crashes
children, lets them exit normally and moves time, and after every step checks that the supervisor did
exactly what an OTP supervisor would: which children stopped and restarted, in what order, and when it
gave up.
"""

from __future__ import annotations

import trio
from hypothesis import settings
from hypothesis import strategies as st
from mcpvisor.supervisors import ChildSpec, Restart, Strategy

from mcpvisor.testing import SupervisedTree, SupervisionStateMachine


async def config_cache(*, task_status: trio.TaskStatus[dict[str, str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Holds configuration the later children read, so they must restart when it does."""
    task_status.started({"greeting": "hello"})
    await trio.sleep_forever()


async def heartbeat(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Periodic work. The machine moves the mock clock, so this loop really ticks during the test."""
    task_status.started()
    beats = 0
    while True:
        await trio.sleep(1.0)
        beats += 1


async def reporter(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """A job that may finish on its own: TRANSIENT, so it is restarted only when it crashes."""
    task_status.started()
    await trio.sleep_forever()


class MyTreeMachine(SupervisionStateMachine):
    def draw_tree(self, data: st.DataObject) -> SupervisedTree:
        # The children are fixed; let hypothesis vary the restart limits too.
        return SupervisedTree(
            children=(
                ChildSpec("config", config_cache),
                ChildSpec("heartbeat", heartbeat),
                ChildSpec("reporter", reporter, restart=Restart.TRANSIENT),
            ),
            strategy=Strategy.REST_FOR_ONE,
            intensity=data.draw(st.integers(0, 3), label="intensity"),
            period=5.0,
        )


MyTreeMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
TestMyTree = MyTreeMachine.TestCase
