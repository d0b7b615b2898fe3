"""mcpvisor.testing: property-based testing of supervision trees (needs the ``testing`` extra).

A facade over ``mcpvisor.supervisors.testing``: a pure reference model of OTP supervision, hypothesis
strategies for trees and fault schedules, and a state machine that checks a real tree against the
model. See docs/testing.md.
"""

from mcpvisor.supervisors.testing import (
    AutoShutdownTriggered,
    ChildEntry,
    ChildShape,
    Escalated,
    Event,
    Exited,
    ExitKind,
    Fault,
    InjectedCrash,
    Outcome,
    Started,
    Status,
    SupervisedTree,
    SupervisionModel,
    SupervisionStateMachine,
    SupervisorShape,
    TreeHarness,
    assert_follows_model,
    child_shapes,
    fault_gaps,
    fault_schedules,
    faults,
    idle_child,
    shape_of,
    simulate,
    supervisor_shapes,
)

__all__ = [
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
