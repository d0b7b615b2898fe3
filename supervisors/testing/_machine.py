"""A hypothesis state machine that runs a real supervisor next to the OTP model and compares them.

Each example draws a tree (``draw_tree``), starts it under ``MockClock`` in a ``TreeHarness``, then
hypothesis chooses steps: crash a running child, make one exit normally, or move the clock. After every
step the machine checks that the real tree did exactly what the model says OTP does: the same child
starts and exits in the same order, the same children running, the same ``which_children`` rows, the
same events reported to ``on_event``, and the same escalation or auto-shutdown. When an example ends,
the supervisor is stopped from outside and its final stops are checked too.

Subclass it to test your own tree: override ``draw_tree`` to return your children and flags (see
docs/testing.md), then ``TestMyTree = MyMachine.TestCase``.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import trio
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from .._spec import BRUTAL_KILL, INFINITY, ChildSpec
from ._harness import SupervisedTree, TreeHarness, default_open
from ._model import ChildEntry, Event, ExitKind, Fault, Status, SupervisionModel, SupervisorShape
from ._reported import reported_as_model_events, which_children_entries
from ._strategies import fault_gaps, supervisor_shapes


async def idle_child(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The default generated child: starts at once and runs until stopped."""
    task_status.started(None)
    await trio.sleep_forever()


def shape_of(tree: SupervisedTree) -> SupervisorShape:
    """The model's view of a real tree."""
    return SupervisorShape.of(
        tree.children,
        strategy=tree.strategy,
        intensity=tree.intensity,
        period=tree.period,
        auto_shutdown=tree.auto_shutdown,
    )


def _diff(expected: Sequence[object], actual: Sequence[object]) -> str:
    lines = difflib.unified_diff(
        [repr(e) for e in expected], [repr(a) for a in actual], "model (OTP)", "real supervisor", lineterm=""
    )
    return "\n".join(lines)


class SupervisionStateMachine(RuleBasedStateMachine):
    """Drives a real supervisor with crashes, normal exits and time, and checks it against the model.

    Class attributes to tune in a subclass:

    * ``shapes``: the strategy ``draw_tree`` draws generated trees from (ignored if you override it).
    * ``check_reported_events``: also compare the supervisor's ``on_event`` stream with the model.
    """

    shapes: ClassVar[st.SearchStrategy[SupervisorShape]] = supervisor_shapes()
    check_reported_events: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.harness: TreeHarness | None = None
        self.model: SupervisionModel | None = None
        self.expected: list[Event] = []
        self.now = 0.0
        self._healthy = True

    # --- what to test: override these ------------------------------------------------------------------

    def draw_tree(self, data: st.DataObject) -> SupervisedTree:
        """The tree under test. The default draws a shape from ``shapes`` and gives it idle children."""
        shape = data.draw(self.shapes, label="shape")
        shutdowns = st.sampled_from((BRUTAL_KILL, 1.0, 5.0, INFINITY))
        children = tuple(
            ChildSpec(
                c.id,
                idle_child,
                restart=c.restart,
                shutdown=data.draw(shutdowns, label=f"{c.id}.shutdown"),
                significant=c.significant,
            )
            for c in shape.children
        )
        return SupervisedTree(children, shape.strategy, shape.intensity, shape.period, shape.auto_shutdown)

    def open_supervisor(
        self, children: Sequence[ChildSpec], on_event: Callable[[object], None], options: dict[str, Any]
    ) -> Any:
        """Open the real supervisor (``open_supervisor(children, on_event=..., **options)`` by default)."""
        return default_open(children, on_event, options)

    # --- steps -------------------------------------------------------------------------------------------

    @initialize(data=st.data())
    def start_tree(self, data: st.DataObject) -> None:
        self._healthy = False
        tree = self.draw_tree(data)
        self.model, events = SupervisionModel.start(shape_of(tree))
        self.expected = list(events)
        self.harness = TreeHarness(tree, open_fn=self.open_supervisor)
        self.harness.start()
        self._healthy = True

    def _may_fault(self) -> bool:
        return self.model is not None and self.model.status is Status.RUNNING and bool(self.model.running())

    @precondition(_may_fault)
    @rule(data=st.data())
    def crash_child(self, data: st.DataObject) -> None:
        self._fault(data, ExitKind.CRASH)

    @precondition(_may_fault)
    @rule(data=st.data())
    def child_exits_normally(self, data: st.DataObject) -> None:
        self._fault(data, ExitKind.NORMAL)

    @precondition(lambda self: self.model is not None)
    @rule(data=st.data())
    def advance_time(self, data: st.DataObject) -> None:
        assert self.model is not None and self.harness is not None
        self._healthy = False
        gap = data.draw(fault_gaps(self.model.shape.period), label="seconds")
        self.now += gap
        self.harness.advance(gap)
        self._healthy = True

    def _fault(self, data: st.DataObject, kind: ExitKind) -> None:
        assert self.model is not None and self.harness is not None
        self._healthy = False
        child_id = data.draw(st.sampled_from(self.model.running()), label="child")
        self.model, events = self.model.exit(Fault(self.now, child_id, kind))
        self.expected.extend(events)
        self.harness.inject(child_id, kind)
        self._healthy = True

    # --- checks ------------------------------------------------------------------------------------------

    @invariant()
    def tree_matches_model(self) -> None:
        if self.harness is None or self.model is None:
            return
        self._healthy = False
        self._check(self.harness, self.model)
        self._healthy = True

    def _check(self, harness: TreeHarness, model: SupervisionModel) -> None:
        assert not harness.unplanned, "children exited without a fault injected: " + "; ".join(
            harness.unplanned
        )
        assert harness.clock.current_time() == self.now
        assert harness.log == self.expected, "children did not start/stop as OTP would:\n" + _diff(
            self.expected, harness.log
        )
        assert harness.live() == model.running(), (
            f"running children: model {model.running()!r}, real {harness.live()!r}"
        )
        if self.check_reported_events:
            reported = reported_as_model_events(harness.reported)
            assert reported == self.expected, "events reported to on_event differ from OTP:\n" + _diff(
                self.expected, reported
            )
        if model.status is Status.RUNNING:
            assert not harness.supervisor_exited, (
                f"the supervisor stopped, the model says it runs: {harness.supervisor_error!r}"
            )
            rows = harness.call(lambda: which_children_entries(harness.handle.which_children()))
            assert rows == list(model.children), "which_children() differs from OTP:\n" + _diff(
                list(model.children), rows
            )
        else:
            assert harness.supervisor_exited, f"the model says the supervisor stopped ({model.status!r})"
            if model.status is Status.ESCALATED:
                assert harness.supervisor_error is not None, "escalation did not raise out of `async with`"
            else:
                assert harness.supervisor_error is None, (
                    f"auto-shutdown should exit normally, got {harness.supervisor_error!r}"
                )

    def teardown(self) -> None:
        harness, model = self.harness, self.model
        if harness is None or model is None:
            return
        if not self._healthy:
            # A step already failed: report that failure, not a follow-on error from stopping.
            with contextlib.suppress(Exception):
                harness.close()
            return
        harness.close()
        model, events = model.shutdown()
        self.expected.extend(events)
        assert harness.log == self.expected, "stopping the supervisor from outside differs:\n" + _diff(
            self.expected, harness.log
        )


__all__ = ["ChildEntry", "SupervisionStateMachine", "idle_child", "shape_of"]
