"""``add_restart`` (the one restart-intensity rule) and ``lone_error`` (the one nursery unwrapping)."""

from __future__ import annotations

import pytest
from mcpvisor.supervisors import DynamicSupervisor, Supervisor, open_supervisor
from mcpvisor.supervisors._lone_error import lone_error
from mcpvisor.supervisors._restart_intensity import DEFAULTS, add_restart


def test_a_restart_exactly_period_old_is_kept_as_otp_keeps_it() -> None:
    kept, exceeded = add_restart([(0.0, "a"), (1.0, "b")], 5.0, "c", intensity=3, period=5.0)
    assert kept == [(0.0, "a"), (1.0, "b"), (5.0, "c")]
    assert not exceeded


def test_older_restarts_drop_out_of_the_window() -> None:
    kept, exceeded = add_restart([(0.0, "a"), (1.0, "b")], 5.5, "c", intensity=1, period=5.0)
    assert kept == [(1.0, "b"), (5.5, "c")]
    assert exceeded  # two in the window, one allowed


def test_intensity_zero_gives_up_on_the_first_restart() -> None:
    assert add_restart([], 0.0, "x", intensity=0, period=1.0) == ([(0.0, "x")], True)


def test_every_supervisor_starts_from_the_same_defaults() -> None:
    assert (Supervisor([]).intensity, Supervisor([]).period) == (DEFAULTS.intensity, DEFAULTS.period)
    assert (DynamicSupervisor().intensity, DynamicSupervisor().period) == (3, 5.0)
    defaults = open_supervisor.__wrapped__.__kwdefaults__  # type: ignore[attr-defined]
    assert (defaults["intensity"], defaults["period"]) == (3, 5.0)


def test_lone_error_unwraps_one_level_unless_told_to_go_through_nested_groups() -> None:
    inner = ValueError("x")
    nested = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [inner])])
    assert isinstance(lone_error(nested), BaseExceptionGroup)  # a user's own group stays a group
    assert lone_error(nested, nested=True) is inner
    assert lone_error(BaseExceptionGroup("two", [inner, KeyError()])) is None


@pytest.mark.parametrize("count", [1, 2])
def test_lone_error_of_a_flat_group(count: int) -> None:
    errors = [ValueError(str(i)) for i in range(count)]
    found = lone_error(BaseExceptionGroup("g", errors))
    assert found is (errors[0] if count == 1 else None)
