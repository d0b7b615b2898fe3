"""The seven divergences from OTP's supervisor.erl found by issue 12, each pinned by a test.

Every test here failed before its fix. The same cases run against real Erlang/OTP in
``tests/test_supervisor_otp_differential.py``; these are the fast, OTP-free versions.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from _sup_children import Children, StartFailed, autojump_clock, settle
from mcpvisor.supervisors import (
    INFINITY,
    AutoShutdown,
    ChildExited,
    ChildNotFound,
    ChildSpec,
    ChildStillRunning,
    ChildType,
    DynamicSupervisor,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    SupervisorAutoShutdown,
    is_abnormal,
    open_dynamic_supervisor,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


def _giving_up_sub(kids: Children, name: str = "sub") -> Supervisor:
    return Supervisor([kids.spec("x")], intensity=0, name=name)


# ---- 1. a supervisor that gives up exits as OTP's `shutdown` for its parent ----------------------


async def test_a_transient_child_supervisor_that_gives_up_is_not_restarted(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[object] = []
    spec = ChildSpec("sub", _giving_up_sub(kids), restart=Restart.TRANSIENT, type=ChildType.SUPERVISOR)
    async with open_supervisor([spec], intensity=5, on_event=events.append) as sup:
        kids.crash("x")
        await settle()
        # OTP: do_restart(shutdown, ...) on a transient child: kept, not running, not restarted
        assert kids.entries("start") == ["x"]
        assert [(r.id, r.running) for r in sup.which_children()] == [("sub", False)]
    exits = [e for e in events if isinstance(e, ChildExited) and e.child_id == "sub"]
    # the exception stays visible to whoever reads the event, but it counts as a shutdown
    assert isinstance(exits[0].reason, RestartIntensityExceeded)
    assert not is_abnormal(exits[0].reason)


async def test_a_significant_child_supervisor_that_gives_up_triggers_auto_shutdown(
    autojump_clock: MockClock,
) -> None:
    kids = Children()
    events: list[object] = []
    spec = ChildSpec(
        "sub", _giving_up_sub(kids), restart=Restart.TRANSIENT, type=ChildType.SUPERVISOR, significant=True
    )
    specs = [kids.spec("a"), spec]
    async with open_supervisor(
        specs, intensity=5, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT, on_event=events.append
    ):
        kids.crash("x")
        with trio.fail_after(100):
            await trio.sleep_forever()  # cancelled by the auto-shutdown
    assert SupervisorAutoShutdown("supervisor", "sub") in events
    assert kids.entries("stop") == ["a"]


async def test_a_permanent_child_supervisor_that_gives_up_is_restarted(autojump_clock: MockClock) -> None:
    kids = Children()
    spec = ChildSpec("sub", _giving_up_sub(kids), type=ChildType.SUPERVISOR)
    async with open_supervisor([spec], intensity=5):
        kids.crash("x")
        await settle()
        assert kids.entries("start") == ["x", "x"]


async def test_the_escalation_is_still_raised_to_the_caller(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor([kids.spec("x")], intensity=0):
            kids.crash("x")
            with trio.fail_after(100):
                await trio.sleep_forever()


# ---- 2. a failing restart does not hold the supervisor (hanging_restart_loop, OTP-9549) ----------


def _slow_failing_start(log: list[str]) -> Any:
    runs = 0

    async def start(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            task_status.started("first")
            await trio.sleep(1.0)
            raise RuntimeError("crash")
        log.append("attempt")
        await trio.sleep(2.0)
        raise StartFailed("slow failure")

    return start


async def test_terminate_child_answers_while_a_restart_keeps_failing(autojump_clock: MockClock) -> None:
    log: list[str] = []
    spec = ChildSpec("flaky", _slow_failing_start(log))
    async with open_supervisor([spec], intensity=20, period=1000.0) as sup:
        await trio.sleep(1.5)  # crashed at 1.0; the first restart attempt is under way
        with trio.fail_after(3.0):  # OTP answers between two attempts (each 2 s here)
            await sup.terminate_child("flaky")
        attempts = len(log)
        await trio.sleep(20.0)
        assert len(log) == attempts  # terminated: nothing retries it any more
        assert [(r.id, r.running) for r in sup.which_children()] == [("flaky", False)]


async def test_stop_completes_while_a_restart_keeps_failing(autojump_clock: MockClock) -> None:
    log: list[str] = []
    async with open_supervisor(
        [ChildSpec("flaky", _slow_failing_start(log))], intensity=20, period=1000.0
    ) as sup:
        await trio.sleep(1.5)
        sup.stop()
        with trio.fail_after(3.0):
            await sup.wait_stopped()


async def test_a_restarting_child_cannot_be_deleted_or_restarted(autojump_clock: MockClock) -> None:
    log: list[str] = []
    async with open_supervisor(
        [ChildSpec("flaky", _slow_failing_start(log))], intensity=20, period=1000.0
    ) as sup:
        await trio.sleep(1.5)
        # OTP: {error, restarting}
        with pytest.raises(ChildStillRunning, match="restart"):
            await sup.delete_child("flaky")
        with pytest.raises(ChildStillRunning, match="restart"):
            await sup.restart_child("flaky")
        await sup.terminate_child("flaky")


async def test_repeated_start_failures_still_count_towards_the_intensity(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor([kids.spec("a")], intensity=3, period=5.0):
            kids.fail_starts["a"] = 100
            kids.crash("a")
            with trio.fail_after(100):
                await trio.sleep_forever()
    assert kids.entries("failed") == ["a"] * 3  # restarts 2, 3, 4: the 4th is one too many


async def test_a_group_restart_retried_after_a_start_failure(autojump_clock: MockClock) -> None:
    kids = Children()
    specs = [kids.spec("a"), kids.spec("b"), kids.spec("c")]
    async with open_supervisor(specs, strategy=Strategy.ONE_FOR_ALL, intensity=10) as sup:
        kids.fail_starts["b"] = 2
        kids.crash("a")
        await settle()
        assert [(r.id, r.running) for r in sup.which_children()] == [("a", True), ("b", True), ("c", True)]
        # each retry of one_for_all stops the ones already restarted and starts the group again
        assert kids.entries("start") == ["a", "b", "c", "a", "a", "a", "b", "c"]


# ---- 3. a supervisor child's shutdown defaults to infinity --------------------------------------


def test_a_supervisor_childs_shutdown_defaults_to_infinity() -> None:
    sub = Supervisor([])
    assert ChildSpec("sub", sub, type=ChildType.SUPERVISOR).shutdown == INFINITY
    assert ChildSpec("w", sub).shutdown == 5.0
    assert ChildSpec("sub", sub, type=ChildType.SUPERVISOR, shutdown=2.0).shutdown == 2.0


async def test_a_nested_supervisor_gets_all_the_time_its_children_take(autojump_clock: MockClock) -> None:
    kids = Children()
    sub = Supervisor([kids.spec("x", on_stop=4.0), kids.spec("y", on_stop=4.0)], name="sub")
    async with open_supervisor([ChildSpec("sub", sub, type=ChildType.SUPERVISOR)]):
        pass
    assert kids.entries("stop") == ["y", "x"] and kids.entries("killed") == []


# ---- 4. the default intensity is documented ------------------------------------------------------


def test_the_default_intensity_is_stated_where_we_differ() -> None:
    from pathlib import Path

    assert Supervisor([]).intensity == 3 and Supervisor([]).period == 5.0
    doc = (Path(__file__).resolve().parent.parent / "docs" / "supervision.md").read_text()
    head = doc.split("\n## ")[1]  # the first section of the page
    assert "Where we differ" in head.splitlines()[0] and "intensity=3" in head


# ---- 5. strategy and auto_shutdown are validated -------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"strategy": "one_for_al"}, {"strategy": 1}, {"auto_shutdown": "any"}, {"auto_shutdown": None}],
)
def test_bad_flags_are_rejected_at_construction(options: dict[str, Any]) -> None:
    name = next(iter(options))
    with pytest.raises(ValueError, match=name):
        Supervisor([], **options)


async def test_open_supervisor_rejects_a_bad_strategy_before_starting_anything() -> None:
    kids = Children()
    with pytest.raises(ValueError, match="one_for_one, one_for_all, rest_for_one"):
        async with open_supervisor([kids.spec("a")], strategy="one_for_al"):  # type: ignore[arg-type]
            pass
    assert kids.log == []


def test_flags_given_by_their_otp_names_are_accepted() -> None:
    sup = Supervisor([], strategy="one_for_all", auto_shutdown="any_significant")  # type: ignore[arg-type]
    assert sup.strategy is Strategy.ONE_FOR_ALL and sup.auto_shutdown is AutoShutdown.ANY_SIGNIFICANT


def test_max_children_is_validated() -> None:
    with pytest.raises(ValueError, match="max_children"):
        DynamicSupervisor(max_children=-1)


# ---- 6. dynamic terminate_child of a child that already exited is ok ------------------------------


async def test_dynamic_terminate_child_of_an_exited_child_is_ok(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_dynamic_supervisor() as sup:
        handle = await sup.start_child(kids.spec("job", restart=Restart.TEMPORARY))
        kids.finish("job")
        await settle()
        assert sup.which_children() == []
        await sup.terminate_child(handle)  # OTP: ok for a pid that is no longer alive
        with pytest.raises(ChildNotFound):
            await sup.terminate_child("job")  # an id names nothing now: still an error


# ---- 7. a significant child needs auto_shutdown ---------------------------------------------------


def test_a_significant_child_under_auto_shutdown_never_is_refused_at_init() -> None:
    kids = Children()
    spec = kids.spec("job", restart=Restart.TRANSIENT, significant=True)
    with pytest.raises(ValueError, match="bad_combination"):
        Supervisor([spec])
    Supervisor([spec], auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)  # fine


async def test_a_significant_child_under_auto_shutdown_never_is_refused_by_start_child() -> None:
    kids = Children()
    spec = kids.spec("job", restart=Restart.TRANSIENT, significant=True)
    async with open_supervisor([]) as sup:
        with pytest.raises(ValueError, match="bad_combination"):
            await sup.start_child(spec)
        assert sup.which_children() == []
    async with open_dynamic_supervisor() as dyn:
        with pytest.raises(ValueError, match="bad_combination"):
            await dyn.start_child(spec)
    assert kids.log == []
    assert math.isinf(INFINITY)
