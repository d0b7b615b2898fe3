"""The property kit on the trees people build: clean-stopping workers, actors, nested supervisors with
their default shutdowns (issue 12). Before the fix the first two were reported as exiting by
themselves or crashing, and the third hung each step for 30 s."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from mcpvisor.runtime.actors import Behaviour, actor_child_spec
from mcpvisor.supervisors import (
    ChildSpec,
    ChildType,
    Restart,
    Strategy,
    Supervisor,
    stop_requested,
)

from mcpvisor.testing import (
    Advance,
    Crash,
    DeleteChild,
    ExitKind,
    Fault,
    NormalExit,
    RestartChild,
    StartChild,
    SupervisedTree,
    SupervisionStateMachine,
    TerminateChild,
    assert_follows_model,
)

KIT = settings(
    max_examples=15,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.generate],
    database=None,
)


async def clean_stop_worker(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The clean stop docs/supervision.md recommends: return when asked."""
    task_status.started()
    await stop_requested().wait()


async def graceful_worker(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Takes a second of (mock) time to clean up when asked, within its 5 s default grace."""
    task_status.started()
    await stop_requested().wait()
    await trio.sleep(1.0)


class Counter(Behaviour):
    async def init(self) -> None:
        self.count = 0

    async def handle_call(self, message: object, caller: object) -> object:
        self.count += 1
        return self.count


def real_tree() -> SupervisedTree:
    nested = Supervisor(
        [ChildSpec("g1", graceful_worker), ChildSpec("g2", graceful_worker)],
        strategy=Strategy.ONE_FOR_ALL,
        name="nested",
    )
    return SupervisedTree(
        (
            actor_child_spec("counter", Counter),
            ChildSpec("clean", clean_stop_worker),
            ChildSpec("nested", nested, type=ChildType.SUPERVISOR),  # default shutdown: INFINITY
            ChildSpec("job", clean_stop_worker, restart=Restart.TRANSIENT),
        ),
        strategy=Strategy.REST_FOR_ONE,
        intensity=3,
        period=5.0,
    )


class RealTreeMachine(SupervisionStateMachine):
    def draw_tree(self, data: st.DataObject) -> SupervisedTree:
        return real_tree()


def test_the_kit_passes_on_a_tree_of_actors_clean_stop_workers_and_a_nested_supervisor() -> None:
    began = time.monotonic()
    run_state_machine_as_test(RealTreeMachine, settings=KIT)
    assert time.monotonic() - began < 60  # no step waits out a grace period in real time


def test_a_replayed_schedule_on_the_real_tree() -> None:
    faults = [Fault(1.0, "nested"), Fault(1.0, "clean"), Fault(2.0, "job", ExitKind.NORMAL)]
    assert_follows_model(real_tree(), faults)


class BrokenTreeMachine(SupervisionStateMachine):
    """The model thinks the tree is one_for_one; the tree is rest_for_one."""

    def draw_tree(self, data: st.DataObject) -> SupervisedTree:
        return real_tree()

    def open_supervisor(self, children: Any, on_event: Any, options: dict[str, Any]) -> Any:
        return super().open_supervisor(children, on_event, {**options, "strategy": Strategy.ONE_FOR_ONE})


def test_a_counterexample_is_a_replayable_command_list(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(AssertionError) as failure:
        run_state_machine_as_test(BrokenTreeMachine, settings=KIT)
    text = str(failure.value)
    assert re.search(r"BrokenTreeMachine\.replay\(tree, \[(Crash|NormalExit|Advance|\w+Child)\(\w+=", text)
    replay_source = text[text.index("Replay these steps") :]
    assert "data(" not in replay_source and "tree = SupervisedTree((ChildSpec('counter'" in replay_source
    assert len([r for r in caplog.records if r.name.startswith("mcpvisor")]) == 0


def test_replay_runs_a_command_list_without_hypothesis() -> None:
    commands = [
        Crash("nested"),
        TerminateChild("job"),
        DeleteChild("job"),
        StartChild("job"),
        Advance(1.0),
        NormalExit("clean"),
        RestartChild("clean"),
    ]
    RealTreeMachine.replay(real_tree(), commands)
    with pytest.raises(AssertionError, match=r"replay\(tree, \[NormalExit\(child='clean'\)\]\)"):
        BrokenTreeMachine.replay(real_tree(), [NormalExit("clean")])


def test_api_results_are_compared_with_otp() -> None:
    # restart_child of a running child is OTP's {error, running}; the model and the tree agree
    RealTreeMachine.replay(real_tree(), [RestartChild("clean"), DeleteChild("counter"), TerminateChild("x")])
