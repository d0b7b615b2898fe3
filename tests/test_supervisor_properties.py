"""Property tests of our supervisors, with the same kit users get (``mcpvisor.testing``).

Every strategy runs the state machine: a generated tree under ``MockClock``, random crashes, normal
exits and clock moves, checked against the OTP model after every step. The kit itself is checked too:
it must notice a supervisor that counts restarts wrongly and a child that dies by itself, and the
documented example must run as written.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from mcpvisor.supervisors import BRUTAL_KILL, AutoShutdown, ChildSpec, Restart, Strategy

from mcpvisor.testing import (
    Escalated,
    Exited,
    ExitKind,
    Fault,
    Status,
    SupervisedTree,
    SupervisionStateMachine,
    assert_follows_model,
    fault_schedules,
    idle_child,
    supervisor_shapes,
)

ROOT = Path(__file__).resolve().parent.parent

MACHINE_SETTINGS = settings(
    max_examples=35,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class OneForOneMachine(SupervisionStateMachine):
    shapes = supervisor_shapes(strategies=[Strategy.ONE_FOR_ONE])


class OneForAllMachine(SupervisionStateMachine):
    shapes = supervisor_shapes(strategies=[Strategy.ONE_FOR_ALL])


class RestForOneMachine(SupervisionStateMachine):
    shapes = supervisor_shapes(strategies=[Strategy.REST_FOR_ONE])


class SignificantChildrenMachine(SupervisionStateMachine):
    """Auto-shutdown only: every tree has significant children under ANY_ or ALL_SIGNIFICANT."""

    shapes = supervisor_shapes(
        auto_shutdowns=[AutoShutdown.ANY_SIGNIFICANT, AutoShutdown.ALL_SIGNIFICANT], min_children=2
    )


TestOneForOne = OneForOneMachine.TestCase
TestOneForOne.settings = MACHINE_SETTINGS
TestOneForAll = OneForAllMachine.TestCase
TestOneForAll.settings = MACHINE_SETTINGS
TestRestForOne = RestForOneMachine.TestCase
TestRestForOne.settings = MACHINE_SETTINGS
TestSignificantChildren = SignificantChildrenMachine.TestCase
TestSignificantChildren.settings = MACHINE_SETTINGS


# --- replayed schedules ---------------------------------------------------------------------------------


@st.composite
def trees_and_schedules(draw: st.DrawFn) -> tuple[SupervisedTree, tuple[Fault, ...]]:
    shape = draw(supervisor_shapes())
    children = tuple(
        ChildSpec(c.id, idle_child, restart=c.restart, shutdown=BRUTAL_KILL, significant=c.significant)
        for c in shape.children
    )
    tree = SupervisedTree(children, shape.strategy, shape.intensity, shape.period, shape.auto_shutdown)
    return tree, draw(fault_schedules(shape))


@settings(max_examples=40, deadline=None)
@given(trees_and_schedules())
def test_generated_schedules_replay_as_the_model_says(run: tuple[SupervisedTree, tuple[Fault, ...]]) -> None:
    tree, faults = run
    assert_follows_model(tree, faults)


def test_replay_of_a_hand_written_incident() -> None:
    # db, cache, api under rest_for_one; cache crashes twice within the period, api exits normally
    tree = SupervisedTree(
        (
            ChildSpec("db", idle_child),
            ChildSpec("cache", idle_child),
            ChildSpec("api", idle_child, restart=Restart.TRANSIENT),
        ),
        strategy=Strategy.REST_FOR_ONE,
        intensity=2,
        period=5.0,
    )
    faults = [
        Fault(1.0, "api", ExitKind.NORMAL),
        Fault(2.0, "cache"),
        Fault(7.0, "cache"),
        Fault(7.0, "db"),
    ]
    outcome = assert_follows_model(tree, faults)
    assert outcome.status is Status.ESCALATED
    assert outcome.events[-4:] == (
        Exited("db", ExitKind.CRASH),
        Exited("api", ExitKind.SHUTDOWN),
        Exited("cache", ExitKind.SHUTDOWN),
        Escalated(),
    )


# --- the kit finds real bugs -----------------------------------------------------------------------------

FIND_BUG = settings(
    max_examples=60,
    stateful_step_count=20,
    deadline=None,
    phases=[Phase.generate],
    report_multiple_bugs=False,
    database=None,
)


class LenientSupervisorMachine(SupervisionStateMachine):
    """The model expects ``intensity``, but the supervisor under test gets one more restart."""

    shapes = supervisor_shapes(max_intensity=1)
    check_reported_events = False

    def open_supervisor(
        self, children: Sequence[ChildSpec], on_event: Callable[[object], None], options: dict[str, Any]
    ) -> Any:
        return super().open_supervisor(children, on_event, {**options, "intensity": options["intensity"] + 1})


def test_machine_catches_a_supervisor_that_allows_too_many_restarts() -> None:
    with pytest.raises(AssertionError, match="as OTP would"):
        run_state_machine_as_test(LenientSupervisorMachine, settings=FIND_BUG)


async def flaky_child(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await trio.sleep(1.0)
    raise RuntimeError("flaky child gave up")


class FlakyChildMachine(SupervisionStateMachine):
    def draw_tree(self, data: st.DataObject) -> SupervisedTree:
        return SupervisedTree(
            (ChildSpec("steady", idle_child), ChildSpec("flaky", flaky_child)), intensity=10
        )


def test_machine_reports_a_child_that_crashes_by_itself() -> None:
    with pytest.raises(AssertionError, match=r"exited without a fault injected.*flaky child gave up"):
        run_state_machine_as_test(FlakyChildMachine, settings=FIND_BUG)


# --- the documented example ------------------------------------------------------------------------------


def _load_example() -> Any:
    path = ROOT / "examples" / "test_my_tree.py"
    spec = importlib.util.spec_from_file_location("mcpvisor_example_test_my_tree", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_runs_and_passes() -> None:
    module = _load_example()
    module.TestMyTree("runTest").runTest()


def test_docs_show_the_example_verbatim_and_their_snippets_run() -> None:
    doc = (ROOT / "docs" / "testing.md").read_text()
    example = (ROOT / "examples" / "test_my_tree.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
    assert example in blocks, "docs/testing.md must show examples/test_my_tree.py verbatim"
    ran = 0
    for block in blocks:
        if block == example:
            continue  # run by test_example_runs_and_passes
        namespace: dict[str, Any] = {"__name__": "docs_testing_snippet"}
        exec(compile(block, "docs/testing.md", "exec"), namespace)
        for name, value in namespace.items():
            if name.startswith("test_") and inspect.isfunction(value):
                value()
                ran += 1
    assert len(blocks) >= 4 and ran >= 1


def test_kit_without_hypothesis_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import mcpvisor.supervisors\n"  # the supervisors themselves never need hypothesis
        "try:\n"
        "    import mcpvisor.testing\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "pip install 'mcpvisor[testing]'" in out.stdout, out.stdout + out.stderr
