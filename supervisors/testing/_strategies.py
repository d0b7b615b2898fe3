"""Hypothesis strategies for supervision trees and the faults injected into them.

Times are multiples of 1/4 second and periods multiples of 1/2: such numbers add and subtract exactly
in binary floating point, so a restart that lands exactly ``period`` seconds after an earlier one is a
real boundary case in both the model and a supervisor under ``MockClock``, never a rounding accident.
Gaps of exactly ``period`` and of zero are drawn on purpose: they are where off-by-one windows hide.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from .._spec import AutoShutdown, Restart, Strategy
from ._model import ChildShape, ExitKind, Fault, SupervisionModel, SupervisorShape

__all__ = ["child_shapes", "fault_gaps", "fault_schedules", "faults", "supervisor_shapes"]

_RESTARTS = (Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY)


def child_shapes(child_id: str, *, allow_significant: bool = True) -> st.SearchStrategy[ChildShape]:
    """One child named ``child_id`` with any restart type; significant only when not PERMANENT."""

    @st.composite
    def build(draw: st.DrawFn) -> ChildShape:
        restart = draw(st.sampled_from(_RESTARTS))
        significant = allow_significant and restart is not Restart.PERMANENT and draw(st.booleans())
        return ChildShape(child_id, restart, significant)

    return build()


@st.composite
def supervisor_shapes(
    draw: st.DrawFn,
    *,
    strategies: Sequence[Strategy] = tuple(Strategy),
    min_children: int = 1,
    max_children: int = 5,
    max_intensity: int = 4,
    auto_shutdowns: Sequence[AutoShutdown] = tuple(AutoShutdown),
) -> SupervisorShape:
    """A flat supervisor: children ``c0, c1, ...`` in start order, and drawn strategy and limits.

    Children are marked significant only when ``auto_shutdown`` is not NEVER (OTP rejects significant
    children under a supervisor that would ignore them).
    """
    strategy = draw(st.sampled_from(tuple(strategies)))
    auto_shutdown = draw(st.sampled_from(tuple(auto_shutdowns)))
    n = draw(st.integers(min_children, max_children))
    significant_ok = auto_shutdown is not AutoShutdown.NEVER
    children = tuple(draw(child_shapes(f"c{i}", allow_significant=significant_ok)) for i in range(n))
    intensity = draw(st.integers(0, max_intensity))
    period = draw(st.integers(1, 10)) / 2
    return SupervisorShape(children, strategy, intensity, period, auto_shutdown)


def fault_gaps(period: float) -> st.SearchStrategy[float]:
    """Seconds between two faults: often 0 or exactly ``period``, otherwise a multiple of 1/4 up to 2x."""
    steps = max(1, int(period * 8))
    return st.one_of(
        st.just(0.0),
        st.just(period),
        st.integers(1, steps).map(lambda k: k / 4),
    )


def faults(child_ids: Sequence[str], *, at: float) -> st.SearchStrategy[Fault]:
    """One exit of one of ``child_ids`` at time ``at``: a crash or a normal return."""
    return st.builds(
        Fault,
        at=st.just(at),
        child_id=st.sampled_from(tuple(child_ids)),
        kind=st.sampled_from((ExitKind.CRASH, ExitKind.NORMAL)),
    )


@st.composite
def fault_schedules(draw: st.DrawFn, shape: SupervisorShape, *, max_faults: int = 12) -> tuple[Fault, ...]:
    """Exits of *running* children at non-decreasing times.

    The schedule is drawn alongside the model, so each fault hits a child that is running at that
    moment; it ends early when the supervisor stops (escalation or auto-shutdown).
    """
    model, _ = SupervisionModel.start(shape)
    schedule: list[Fault] = []
    now = 0.0
    for _ in range(draw(st.integers(0, max_faults))):
        live = model.running()
        if not live:
            break
        now += draw(fault_gaps(shape.period))
        fault = draw(faults(live, at=now))
        model, _ = model.exit(fault)
        schedule.append(fault)
    return tuple(schedule)
