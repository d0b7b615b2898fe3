"""Shutdown policies, restart failures, significant children and the demo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import trio
from _sup_children import Children, autojump_clock, settle
from mcpvisor.supervisors import (
    BRUTAL_KILL,
    AutoShutdown,
    Restart,
    RestartIntensityExceeded,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


async def test_graceful_exit_within_grace_period(autojump_clock: MockClock) -> None:
    kids = Children()
    start = trio.current_time()
    async with open_supervisor([kids.spec("a", on_stop=2.0, shutdown=5.0)]):
        pass
    assert kids.entries("stop") == ["a"] and kids.entries("killed") == []
    assert trio.current_time() - start == pytest.approx(2.0)


async def test_child_cancelled_after_grace_period(autojump_clock: MockClock) -> None:
    kids = Children()
    start = trio.current_time()
    async with open_supervisor([kids.spec("a", on_stop="ignore", shutdown=3.0)]):
        pass
    assert kids.entries("killed") == ["a"]
    assert trio.current_time() - start == pytest.approx(3.0)


async def test_brutal_kill_cancels_at_once(autojump_clock: MockClock) -> None:
    kids = Children()
    start = trio.current_time()
    async with open_supervisor([kids.spec("a", shutdown=BRUTAL_KILL)]):
        pass
    assert kids.entries("killed") == ["a"] and kids.entries("asked") == []
    assert trio.current_time() == start


async def test_restart_failure_is_retried_and_counted(autojump_clock: MockClock) -> None:
    kids = Children()
    async with open_supervisor([kids.spec("a")], intensity=3):
        kids.fail_starts["a"] = 2
        kids.crash("a")
        await settle()
        assert kids.entries("failed") == ["a", "a"]
        assert kids.entries("start") == ["a", "a"]


async def test_restart_failures_exceeding_intensity_escalate(autojump_clock: MockClock) -> None:
    kids = Children()
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor([kids.spec("a")], intensity=2):
            kids.fail_starts["a"] = 10
            kids.crash("a")
            await trio.sleep_forever()
    assert kids.entries("failed") == ["a", "a"]


async def test_any_significant_stops_supervisor(autojump_clock: MockClock) -> None:
    kids = Children()
    specs = [kids.spec("a"), kids.spec("s", restart=Restart.TRANSIENT, significant=True)]
    async with open_supervisor(specs, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT) as sup:
        kids.finish("s")
        await trio.sleep_forever()  # cancelled when the supervisor shuts itself down
    assert kids.entries("stop") == ["a"]
    assert not sup._run.running


async def test_all_significant_waits_for_the_last(autojump_clock: MockClock) -> None:
    kids = Children()
    specs = [
        kids.spec("a"),
        kids.spec("s1", restart=Restart.TEMPORARY, significant=True),
        kids.spec("s2", restart=Restart.TRANSIENT, significant=True),
    ]
    async with open_supervisor(specs, auto_shutdown=AutoShutdown.ALL_SIGNIFICANT):
        kids.finish("s1")
        await settle()
        assert kids.entries("stop") == []
        kids.finish("s2")
        await trio.sleep_forever()
    assert kids.entries("stop") == ["a"]


def test_demo_runs_and_prints_restarts() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mcpvisor.supervisors.demo", "--seconds", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "restarted" in out.stdout
    assert "crashed" in out.stdout
    assert out.stdout.rstrip().endswith("demo finished")
