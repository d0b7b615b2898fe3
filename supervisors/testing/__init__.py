"""Property-based testing of supervision: a reference model of OTP, strategies, a state machine.

``hypothesis`` is an optional dependency (the ``testing`` extra): the model needs nothing but attrs,
the strategies and the state machine need hypothesis, and importing this package without it fails
with an ImportError that says how to install it.
"""

try:
    import hypothesis as _hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "mcpvisor.supervisors.testing needs hypothesis: install it with "
        "`pip install 'mcpvisor[testing]'` (or `pip install hypothesis`)"
    ) from exc

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
from ._differential import (
    DynNode,
    OtpUnavailable,
    Scenario,
    SupNode,
    WorkerNode,
    canonical,
    compare_with_otp,
    divergence_scenarios,
    escript_path,
    generated_scenarios,
    random_scenario,
    run_on_mcpvisor,
    run_on_otp,
    to_erlang,
)
from ._harness import InjectedCrash, SupervisedTree, TreeHarness
from ._machine import SupervisionStateMachine, idle_child, shape_of
from ._model import (
    AutoShutdownTriggered,
    ChildEntry,
    ChildShape,
    Escalated,
    Event,
    Exited,
    ExitKind,
    Fault,
    Outcome,
    Started,
    Status,
    SupervisionModel,
    SupervisorShape,
    simulate,
)
from ._replay import assert_follows_model
from ._strategies import child_shapes, fault_gaps, fault_schedules, faults, supervisor_shapes

__all__ = [
    "DynNode",
    "canonical",
    "OtpUnavailable",
    "Scenario",
    "SupNode",
    "WorkerNode",
    "compare_with_otp",
    "divergence_scenarios",
    "escript_path",
    "generated_scenarios",
    "random_scenario",
    "run_on_mcpvisor",
    "run_on_otp",
    "to_erlang",
    "Advance",
    "Command",
    "Crash",
    "DeleteChild",
    "NormalExit",
    "RestartChild",
    "StartChild",
    "TerminateChild",
    "AutoShutdownTriggered",
    "ChildEntry",
    "ChildShape",
    "Escalated",
    "Event",
    "ExitKind",
    "Exited",
    "Fault",
    "InjectedCrash",
    "Outcome",
    "Started",
    "Status",
    "SupervisedTree",
    "SupervisionModel",
    "SupervisionStateMachine",
    "SupervisorShape",
    "TreeHarness",
    "assert_follows_model",
    "child_shapes",
    "fault_gaps",
    "fault_schedules",
    "faults",
    "idle_child",
    "shape_of",
    "simulate",
    "supervisor_shapes",
]
