"""A hypothesis state machine that runs a real supervisor next to the OTP model and compares them.

Each example draws a tree (``draw_tree``), starts it under ``MockClock`` in a ``TreeHarness``, then
hypothesis chooses steps: crash a running child, make one exit normally, move the clock, or call the
supervisor's API (``terminate_child``, ``restart_child``, ``delete_child``, ``start_child``). After every
step the machine checks that the real tree did exactly what the model says OTP does: the same child
starts and exits in the same order, the same children running, the same ``which_children`` rows, the
same events reported to ``on_event``, the same API results, and the same escalation or auto-shutdown.
When an example ends, the supervisor is stopped from outside and its final stops are checked too.

Every step is a ``Command`` record; a failure is reported with the command list as a line of code
(``Machine.replay(tree, [...])``) that runs the same steps again without hypothesis.

Subclass it to test your own tree: override ``draw_tree`` to return your children and flags (see
docs/testing.md), then ``TestMyTree = MyMachine.TestCase``. Override ``after_command`` to keep a model
of your own and check postconditions after every command.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs
import trio
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from .._errors import ChildAlreadyPresent, ChildNotFound, ChildStillRunning
from .._spec import BRUTAL_KILL, INFINITY, ChildSpec
from ._commands import (
    Advance,
    Command,
    Crash,
    DeleteChild,
    NormalExit,
    RestartChild,
    StartChild,
    TerminateChild,
)
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
    * ``api_calls``: also generate ``terminate_child``, ``restart_child``, ``delete_child`` and
      ``start_child`` calls and compare their results with OTP's.
    """

    shapes: ClassVar[st.SearchStrategy[SupervisorShape]] = supervisor_shapes()
    check_reported_events: ClassVar[bool] = True
    api_calls: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.harness: TreeHarness | None = None
        self.model: SupervisionModel | None = None
        self.tree: SupervisedTree | None = None
        self.expected: list[Event] = []
        self.commands: list[Command] = []
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

    def after_command(self, command: Command, model: SupervisionModel, harness: TreeHarness) -> None:
        """Called after every command once the tree has settled (before the checks): keep a model of
        your own here and assert its postconditions. ``harness.call(fn, *args)`` runs ``fn`` in the
        tree's loop, e.g. to call an actor of the tree. The default does nothing."""

    # --- steps -------------------------------------------------------------------------------------------

    @initialize(data=st.data())
    def start_tree(self, data: st.DataObject) -> None:
        self._begin(self.draw_tree(data))

    def _begin(self, tree: SupervisedTree) -> None:
        self._healthy = False
        self.tree = tree
        self.model, events = SupervisionModel.start(shape_of(tree))
        self.expected = list(events)
        self.harness = TreeHarness(tree, open_fn=self.open_supervisor)
        self.harness.start()
        self._healthy = True

    def _running(self) -> bool:
        return self.model is not None and self.model.status is Status.RUNNING

    def _may_fault(self) -> bool:
        return self._running() and bool(self.model is not None and self.model.running())

    def _may_call(self) -> bool:
        return self.api_calls and self._running()

    @precondition(_may_fault)
    @rule(data=st.data())
    def crash_child(self, data: st.DataObject) -> None:
        assert self.model is not None
        self.execute(Crash(data.draw(st.sampled_from(self.model.running()), label="child")))

    @precondition(_may_fault)
    @rule(data=st.data())
    def child_exits_normally(self, data: st.DataObject) -> None:
        assert self.model is not None
        self.execute(NormalExit(data.draw(st.sampled_from(self.model.running()), label="child")))

    @precondition(lambda self: self.model is not None)
    @rule(data=st.data())
    def advance_time(self, data: st.DataObject) -> None:
        assert self.model is not None
        self.execute(Advance(data.draw(fault_gaps(self.model.shape.period), label="seconds")))

    @precondition(_may_call)
    @rule(data=st.data())
    def call_api(self, data: st.DataObject) -> None:
        assert self.model is not None and self.tree is not None
        present = [c.id for c in self.model.children]
        absent = [c.id for c in self.tree.children if c.id not in present]
        kinds: list[type[TerminateChild | RestartChild | DeleteChild | StartChild]] = []
        if present:
            kinds += [TerminateChild, RestartChild, DeleteChild]
        if absent:
            kinds.append(StartChild)
        if not kinds:
            return
        kind = data.draw(st.sampled_from(kinds), label="call")
        pool = absent if kind is StartChild else present
        self.execute(kind(data.draw(st.sampled_from(pool), label="child")))

    def execute(self, command: Command) -> None:
        """Apply ``command`` to the model and to the real tree, then compare what the API returned."""
        assert self.model is not None and self.harness is not None
        self._healthy = False
        self.commands.append(command)
        try:
            self._execute(command, self.model, self.harness)
            self.after_command(command, self.model, self.harness)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n\n{self.counterexample()}") from None
        self._healthy = True

    def _execute(self, command: Command, model: SupervisionModel, harness: TreeHarness) -> None:
        if isinstance(command, Advance):
            self.now += command.seconds
            self.model = attrs.evolve(model, now=self.now)
            harness.advance(command.seconds)
            return
        if isinstance(command, Crash | NormalExit):
            kind = ExitKind.CRASH if isinstance(command, Crash) else ExitKind.NORMAL
            if not model.is_running(command.child):
                raise AssertionError(f"{command!r}: the model has no running child {command.child!r}")
            self.model, events = model.exit(Fault(self.now, command.child, kind))
            self.expected.extend(events)
            harness.inject(command.child, kind)
            return
        if isinstance(command, TerminateChild):
            self.model, events, expected = model.terminate_child(command.child)
            actual = _result(harness.call_api("terminate_child", command.child))
        elif isinstance(command, RestartChild):
            self.model, events, expected = model.restart_child(command.child)
            actual = _result(harness.call_api("restart_child", command.child))
        elif isinstance(command, DeleteChild):
            self.model, events, expected = model.delete_child(command.child)
            actual = _result(harness.call_api("delete_child", command.child))
        else:
            self.model, events, expected = model.start_child(command.child)
            actual = _result(harness.start_child(command.child))
        self.expected.extend(events)
        assert actual == expected, f"{command!r} returned {actual!r}, OTP returns {expected!r}"

    def counterexample(self) -> str:
        """The failing steps as a line of code that runs them again."""
        tree = _tree_source(self.tree) if self.tree is not None else "..."
        return (
            "Replay these steps without hypothesis:\n"
            f"    tree = {tree}\n"
            f"    {type(self).__name__}.replay(tree, {self.commands!r})"
        )

    @classmethod
    def replay(cls, tree: SupervisedTree, commands: Sequence[Command]) -> None:
        """Run ``commands`` on ``tree`` with the same checks as the machine; raise on the first mismatch."""
        machine = cls()
        machine._begin(tree)
        try:
            machine.tree_matches_model()
            for command in commands:
                machine.execute(command)
                machine.tree_matches_model()
        finally:
            machine.teardown()

    # --- checks ------------------------------------------------------------------------------------------

    @invariant()
    def tree_matches_model(self) -> None:
        if self.harness is None or self.model is None:
            return
        self._healthy = False
        try:
            self._check(self.harness, self.model)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n\n{self.counterexample()}") from None
        self._healthy = True

    def _check(self, harness: TreeHarness, model: SupervisionModel) -> None:
        assert not harness.unplanned, "children exited without a fault injected: " + "; ".join(
            harness.unplanned
        )
        assert harness.clock.current_time() == self.now
        assert harness.log == self.expected, "children did not start/stop as OTP would:\n" + _diff(
            self.expected, harness.log
        )
        assert sorted(harness.live()) == sorted(model.running()), (
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


def _result(outcome: object) -> str:
    """An API call's outcome (``TreeHarness.call`` returns the exception it raised) in OTP's words."""
    if isinstance(outcome, ChildNotFound):
        return "not_found"
    if isinstance(outcome, ChildStillRunning):
        return "running"
    if isinstance(outcome, ChildAlreadyPresent):
        return "already_present"
    if isinstance(outcome, BaseException):
        return f"raised {outcome!r}"
    return "ok"


def _name(fn: object) -> str:
    """A start function by name; a callable object (a ``Supervisor``, an actor's start) by its type."""
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else f"<{type(fn).__name__}>"


def _tree_source(tree: SupervisedTree) -> str:
    """The tree as code (start functions by name), so a counterexample can be pasted into a test."""
    specs = []
    for c in tree.children:
        shutdown = "INFINITY" if math.isinf(c.shutdown) else repr(c.shutdown)
        options = [f"restart=Restart.{c.restart.name}", f"shutdown={shutdown}"]
        if c.type.name != "WORKER":
            options.append(f"type=ChildType.{c.type.name}")
        if c.significant:
            options.append("significant=True")
        specs.append(f"ChildSpec({c.id!r}, {_name(c.start)}, {', '.join(options)})")
    return (
        f"SupervisedTree(({', '.join(specs)},), strategy=Strategy.{tree.strategy.name}, "
        f"intensity={tree.intensity}, period={tree.period!r}, "
        f"auto_shutdown=AutoShutdown.{tree.auto_shutdown.name})"
    )


__all__ = ["ChildEntry", "SupervisionStateMachine", "idle_child", "shape_of"]
