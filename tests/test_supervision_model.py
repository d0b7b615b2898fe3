"""The pure supervision model against hand-written cases from OTP's supervisor semantics.

Each case spells out the exact event list a real OTP supervisor would produce (``supervisor.erl``:
``do_restart``, ``restart/2``, ``add_restart``, ``check_auto_shutdown``), so the model the property tests
trust is itself pinned down.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.supervisors import AutoShutdown, Restart, Strategy
from mcpvisor.supervisors.testing import (
    AutoShutdownTriggered,
    ChildEntry,
    ChildShape,
    Escalated,
    Exited,
    ExitKind,
    Fault,
    Started,
    Status,
    SupervisionModel,
    SupervisorShape,
    fault_schedules,
    simulate,
    supervisor_shapes,
)

CRASH, NORMAL, SHUTDOWN = ExitKind.CRASH, ExitKind.NORMAL, ExitKind.SHUTDOWN
P, T, TMP = Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY


def shape(*restarts: Restart, **flags: object) -> SupervisorShape:
    return SupervisorShape(tuple(ChildShape(f"c{i}", r) for i, r in enumerate(restarts)), **flags)  # type: ignore[arg-type]


def started(*ids: str) -> tuple[Started, ...]:
    return tuple(Started(i) for i in ids)


def restarted(*ids: str) -> tuple[Started, ...]:
    return tuple(Started(i, restart=True) for i in ids)


def stopped(*ids: str) -> tuple[Exited, ...]:
    return tuple(Exited(i, SHUTDOWN) for i in ids)


def events_after_start(s: SupervisorShape, *faults: Fault) -> tuple[object, ...]:
    out = simulate(s, faults)
    assert out.events[: len(s.children)] == started(*(c.id for c in s.children))
    return out.events[len(s.children) :]


# --- restart types under one_for_one -------------------------------------------------------------------


def test_initial_start_in_order() -> None:
    out = simulate(shape(P, T, TMP), [])
    assert out.events == started("c0", "c1", "c2")
    assert out.children == (ChildEntry("c0", True), ChildEntry("c1", True), ChildEntry("c2", True))
    assert out.status is Status.RUNNING


@pytest.mark.parametrize("kind", [CRASH, NORMAL])
def test_permanent_child_is_always_restarted(kind: ExitKind) -> None:
    s = shape(P, P)
    assert events_after_start(s, Fault(1.0, "c0", kind)) == (Exited("c0", kind), *restarted("c0"))


def test_transient_child_restarted_after_crash_only() -> None:
    s = shape(T, P)
    assert events_after_start(s, Fault(1.0, "c0", CRASH)) == (Exited("c0", CRASH), *restarted("c0"))
    out = simulate(s, [Fault(1.0, "c0", NORMAL)])
    assert out.events[2:] == (Exited("c0", NORMAL),)
    # OTP keeps it in the child list, not running (which_children shows `undefined`).
    assert out.children == (ChildEntry("c0", False), ChildEntry("c1", True))


@pytest.mark.parametrize("kind", [CRASH, NORMAL])
def test_temporary_child_is_never_restarted_and_removed(kind: ExitKind) -> None:
    out = simulate(shape(TMP, P), [Fault(1.0, "c0", kind)])
    assert out.events[2:] == (Exited("c0", kind),)
    assert out.children == (ChildEntry("c1", True),)


def test_temporary_exits_do_not_count_as_restarts() -> None:
    s = shape(TMP, TMP, TMP, intensity=0)
    out = simulate(s, [Fault(0.0, "c0"), Fault(0.0, "c1"), Fault(0.0, "c2")])
    assert out.status is Status.RUNNING
    assert out.children == ()


# --- strategies ----------------------------------------------------------------------------------------


def test_one_for_all_stops_others_in_reverse_and_restarts_all_in_order() -> None:
    s = shape(P, P, P, P, strategy=Strategy.ONE_FOR_ALL)
    assert events_after_start(s, Fault(1.0, "c1")) == (
        Exited("c1", CRASH),
        *stopped("c3", "c2", "c0"),
        *restarted("c0", "c1", "c2", "c3"),
    )


def test_rest_for_one_restarts_the_child_and_the_later_ones() -> None:
    s = shape(P, P, P, P, strategy=Strategy.REST_FOR_ONE)
    assert events_after_start(s, Fault(1.0, "c1")) == (
        Exited("c1", CRASH),
        *stopped("c3", "c2"),
        *restarted("c1", "c2", "c3"),
    )


def test_rest_for_one_on_the_last_child_is_one_for_one() -> None:
    s = shape(P, P, P, strategy=Strategy.REST_FOR_ONE)
    assert events_after_start(s, Fault(1.0, "c2")) == (Exited("c2", CRASH), *restarted("c2"))


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_temporary_sibling_stopped_by_a_group_restart_is_removed(strategy: Strategy) -> None:
    s = shape(P, TMP, P, strategy=strategy)
    out = simulate(s, [Fault(1.0, "c0")])
    assert out.events[3:] == (Exited("c0", CRASH), *stopped("c2", "c1"), *restarted("c0", "c2"))
    assert out.children == (ChildEntry("c0", True), ChildEntry("c2", True))


def test_one_for_all_restarts_a_transient_child_that_had_exited_normally() -> None:
    # supervisor.erl's start_children starts every child still in the list, running or not.
    s = shape(T, P, strategy=Strategy.ONE_FOR_ALL)
    out = simulate(s, [Fault(1.0, "c0", NORMAL), Fault(2.0, "c1")])
    assert out.events[2:] == (Exited("c0", NORMAL), Exited("c1", CRASH), *restarted("c0", "c1"))
    assert out.children == (ChildEntry("c0", True), ChildEntry("c1", True))


def test_rest_for_one_does_not_restart_an_earlier_exited_transient() -> None:
    s = shape(T, P, strategy=Strategy.REST_FOR_ONE)
    out = simulate(s, [Fault(1.0, "c0", NORMAL), Fault(2.0, "c1")])
    assert out.events[2:] == (Exited("c0", NORMAL), Exited("c1", CRASH), *restarted("c1"))
    assert out.children == (ChildEntry("c0", False), ChildEntry("c1", True))


# --- restart intensity ---------------------------------------------------------------------------------


def test_intensity_zero_escalates_on_the_first_restart() -> None:
    s = shape(P, P, P, intensity=0)
    out = simulate(s, [Fault(1.0, "c1")])
    assert out.events[3:] == (Exited("c1", CRASH), *stopped("c2", "c0"), Escalated())
    assert out.status is Status.ESCALATED
    assert all(not c.running for c in out.children)


def test_more_than_intensity_restarts_in_period_escalates() -> None:
    s = shape(P, P, intensity=2, period=5.0)
    faults = [Fault(0.0, "c0"), Fault(1.0, "c0"), Fault(2.0, "c1")]
    assert events_after_start(s, *faults) == (
        Exited("c0", CRASH),
        *restarted("c0"),
        Exited("c0", CRASH),
        *restarted("c0"),
        Exited("c1", CRASH),
        *stopped("c0"),
        Escalated(),
    )


def test_restart_exactly_period_seconds_later_still_counts() -> None:
    # add_restart keeps R when R >= Now - Period: the window is closed at its old end.
    s = shape(P, intensity=1, period=5.0)
    assert simulate(s, [Fault(0.0, "c0"), Fault(5.0, "c0")]).status is Status.ESCALATED


def test_restart_just_after_the_period_is_allowed() -> None:
    s = shape(P, intensity=1, period=5.0)
    out = simulate(s, [Fault(0.0, "c0"), Fault(5.25, "c0"), Fault(10.5, "c0")])
    assert out.status is Status.RUNNING
    assert out.events[1:] == (Exited("c0", CRASH), *restarted("c0")) * 3


def test_window_slides() -> None:
    s = shape(P, intensity=2, period=2.0)
    # restarts at 0, 1, 2.5 (0 dropped at 2.5), 3.5 (1 dropped): never more than 2 in a window ...
    ok = [Fault(0.0, "c0"), Fault(1.0, "c0"), Fault(2.5, "c0"), Fault(3.5, "c0")]
    assert simulate(s, ok).status is Status.RUNNING
    # ... but 2.5, 3.5 and 4.5 are three within [2.5, 4.5].
    assert simulate(s, [*ok, Fault(4.5, "c0")]).status is Status.ESCALATED


def test_group_restart_counts_once() -> None:
    s = shape(P, P, P, strategy=Strategy.ONE_FOR_ALL, intensity=1)
    out = simulate(s, [Fault(0.0, "c0")])
    assert out.status is Status.RUNNING
    assert simulate(s, [Fault(0.0, "c0"), Fault(0.0, "c2")]).status is Status.ESCALATED


def test_transient_normal_exit_is_not_a_restart() -> None:
    s = shape(T, T, intensity=0)
    out = simulate(s, [Fault(0.0, "c0", NORMAL), Fault(0.0, "c1", NORMAL)])
    assert out.status is Status.RUNNING
    assert out.children == (ChildEntry("c0", False), ChildEntry("c1", False))


# --- auto_shutdown and significant children ------------------------------------------------------------


def sig(*children: tuple[Restart, bool], **flags: object) -> SupervisorShape:
    return SupervisorShape(
        tuple(ChildShape(f"c{i}", r, s) for i, (r, s) in enumerate(children)),
        **flags,  # type: ignore[arg-type]
    )


def test_any_significant_exit_shuts_the_supervisor_down() -> None:
    s = sig((P, False), (T, True), (P, False), auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    out = simulate(s, [Fault(1.0, "c1", NORMAL)])
    assert out.events[3:] == (Exited("c1", NORMAL), *stopped("c2", "c0"), AutoShutdownTriggered())
    assert out.status is Status.AUTO_SHUTDOWN


def test_significant_transient_crash_restarts_instead() -> None:
    s = sig((T, True), (P, False), auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    assert events_after_start(s, Fault(1.0, "c0", CRASH)) == (Exited("c0", CRASH), *restarted("c0"))


def test_significant_temporary_crash_shuts_down() -> None:
    s = sig((TMP, True), (P, False), auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    out = simulate(s, [Fault(1.0, "c0", CRASH)])
    assert out.events[2:] == (Exited("c0", CRASH), *stopped("c1"), AutoShutdownTriggered())


def test_all_significant_waits_for_the_last_significant_child() -> None:
    s = sig((T, True), (P, False), (TMP, True), auto_shutdown=AutoShutdown.ALL_SIGNIFICANT)
    first = simulate(s, [Fault(1.0, "c2", NORMAL)])
    assert first.status is Status.RUNNING
    assert first.events[3:] == (Exited("c2", NORMAL),)
    out = simulate(s, [Fault(1.0, "c2", NORMAL), Fault(2.0, "c0", NORMAL)])
    assert out.events[4:] == (Exited("c0", NORMAL), *stopped("c1"), AutoShutdownTriggered())
    assert out.status is Status.AUTO_SHUTDOWN


def test_non_significant_exit_never_shuts_down() -> None:
    s = sig((T, False), (T, True), auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
    assert simulate(s, [Fault(1.0, "c0", NORMAL)]).status is Status.RUNNING


def test_never_ignores_significance() -> None:
    s = sig((T, True), auto_shutdown=AutoShutdown.NEVER)
    out = simulate(s, [Fault(1.0, "c0", NORMAL)])
    assert out.status is Status.RUNNING
    assert out.children == (ChildEntry("c0", False),)


def test_significant_sibling_stopped_by_a_group_restart_does_not_shut_down() -> None:
    s = sig(
        (P, False), (TMP, True), strategy=Strategy.ONE_FOR_ALL, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT
    )
    out = simulate(s, [Fault(1.0, "c0")])
    assert out.status is Status.RUNNING
    assert out.events[2:] == (Exited("c0", CRASH), *stopped("c1"), *restarted("c0"))


# --- stopped supervisors, ignored faults, outside shutdown ---------------------------------------------


def test_faults_on_children_that_are_not_running_change_nothing() -> None:
    s = shape(T, P)
    out = simulate(s, [Fault(1.0, "c0", NORMAL), Fault(2.0, "c0", CRASH), Fault(3.0, "nobody")])
    assert out.events[2:] == (Exited("c0", NORMAL),)


def test_a_stopped_supervisor_ignores_later_exits() -> None:
    s = shape(P, P, intensity=0)
    out = simulate(s, [Fault(1.0, "c0"), Fault(2.0, "c1")])
    assert out.events[2:] == (Exited("c0", CRASH), *stopped("c1"), Escalated())


def test_outside_shutdown_stops_running_children_in_reverse() -> None:
    s = shape(P, T, P)
    out = simulate(s, [Fault(1.0, "c1", NORMAL)], shutdown=True)
    assert out.events[3:] == (Exited("c1", NORMAL), *stopped("c2", "c0"))
    assert out.status is Status.SHUT_DOWN
    model, _ = SupervisionModel.start(s)
    model, _ = model.shutdown()
    assert model.shutdown() == (model, ())


# --- validation ----------------------------------------------------------------------------------------


def test_records_reject_impossible_input() -> None:
    with pytest.raises(ValueError, match="significant"):
        ChildShape("a", Restart.PERMANENT, significant=True)
    with pytest.raises(ValueError, match="unique"):
        SupervisorShape((ChildShape("a"), ChildShape("a")))
    with pytest.raises(ValueError, match="NORMAL or CRASH"):
        Fault(0.0, "a", ExitKind.SHUTDOWN)
    model, _ = SupervisionModel.start(shape(P))
    model, _ = model.exit(Fault(2.0, "c0"))
    with pytest.raises(ValueError, match="time order"):
        model.exit(Fault(1.0, "c0"))


# --- properties of the model itself --------------------------------------------------------------------


@st.composite
def runs(draw: st.DrawFn) -> tuple[SupervisorShape, tuple[Fault, ...]]:
    s = draw(supervisor_shapes())
    return s, draw(fault_schedules(s))


@settings(max_examples=200, deadline=None)
@given(runs())
def test_model_invariants(run: tuple[SupervisorShape, tuple[Fault, ...]]) -> None:
    s, faults = run
    times = [f.at for f in faults]
    assert times == sorted(times)
    out = simulate(s, faults)
    # every fault of the generated schedule hits a running child: each shows up as an own exit
    own_exits = [e for e in out.events if isinstance(e, Exited) and e.kind is not SHUTDOWN]
    assert [(e.child_id, e.kind) for e in own_exits] == [(f.child_id, f.kind) for f in faults]
    # restart windows: no more than `intensity` restarts in any closed window of length `period`
    model, _ = SupervisionModel.start(s)
    restart_times: list[float] = []
    for f in faults:
        model, events = model.exit(f)
        if any(isinstance(e, Started) for e in events):
            restart_times.append(f.at)
    for t in restart_times:
        assert sum(1 for r in restart_times if t - s.period <= r <= t) <= s.intensity
    # stopped supervisors have no running children; a running one lists exactly the started ones
    if out.status is not Status.RUNNING:
        assert not any(c.running for c in out.children)
        assert isinstance(out.events[-1], Escalated | AutoShutdownTriggered)
    ids = [c.id for c in out.children]
    assert ids == [c.id for c in s.children if c.id in ids]  # start order kept
