"""Supervision events: what ``on_event`` hooks and the ``mcpvisor.supervisors`` logger see, in order,
and that a broken hook never breaks the supervisor it watches."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from _sup_children import Children, Crash, StartFailed, autojump_clock, settle
from mcpvisor.supervisors import (
    SHUTDOWN,
    AutoShutdown,
    ChildExited,
    ChildRestarted,
    ChildStarted,
    ChildStartError,
    ChildStartFailed,
    Restart,
    RestartIntensityExceeded,
    SupervisorAutoShutdown,
    SupervisorEscalated,
    SupervisorStopped,
    open_dynamic_supervisor,
    open_supervisor,
)
from trio.testing import MockClock

__all__ = ["autojump_clock"]


def _kinds(events: list[Any]) -> list[tuple[str, ...]]:
    """Events as comparable tuples: the crash reasons become their exception type's name."""
    out: list[tuple[str, ...]] = []
    for e in events:
        detail = getattr(e, "child_id", None) or ""
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            reason = type(reason).__name__
        out.append((type(e).__name__, detail, repr(reason) if reason is not None else ""))
    return out


async def test_hook_sees_start_crash_restart_and_stop_in_order(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[Any] = []
    async with open_supervisor([kids.spec("a"), kids.spec("b")], name="sup", on_event=events.append):
        kids.crash("b")
        await settle()
    assert _kinds(events) == [
        ("ChildStarted", "a", ""),
        ("ChildStarted", "b", ""),
        ("ChildExited", "b", "'Crash'"),
        ("ChildRestarted", "b", ""),
        ("ChildExited", "b", "shutdown"),
        ("ChildExited", "a", "shutdown"),
        ("SupervisorStopped", "", "shutdown"),
    ]
    assert all(e.supervisor == "sup" for e in events)
    started = [e for e in events if isinstance(e, ChildStarted | ChildRestarted)]
    assert [e.handle.number for e in started] == [1, 1, 2]  # the handle each incarnation passed to started


async def test_hook_sees_escalation_then_stop(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[Any] = []
    with pytest.raises(RestartIntensityExceeded) as info:
        async with open_supervisor([kids.spec("a")], intensity=0, on_event=events.append):
            kids.crash("a")
            await trio.sleep_forever()
    assert [type(e) for e in events] == [ChildStarted, ChildExited, SupervisorEscalated, SupervisorStopped]
    assert events[2].error is info.value and events[3].reason is info.value
    assert isinstance(events[1].reason, Crash)


async def test_hook_sees_start_failure(autojump_clock: MockClock) -> None:
    kids = Children(fail_starts={"b": 1})
    events: list[Any] = []
    with pytest.raises(ChildStartError):
        async with open_supervisor([kids.spec("a"), kids.spec("b")], on_event=events.append):
            pytest.fail("the body must not run")
    assert _kinds(events) == [
        ("ChildStarted", "a", ""),
        ("ChildStartFailed", "b", ""),
        ("ChildExited", "a", "shutdown"),
    ]
    assert isinstance(events[1], ChildStartFailed) and isinstance(events[1].error, StartFailed)


async def test_hook_sees_auto_shutdown(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[Any] = []
    specs = [kids.spec("a"), kids.spec("s", restart=Restart.TEMPORARY, significant=True)]
    async with open_supervisor(specs, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT, on_event=events.append):
        kids.finish("s")
        await trio.sleep_forever()
    assert [type(e) for e in events][-3:] == [ChildExited, SupervisorAutoShutdown, SupervisorStopped]
    assert events[-2].child_id == "s"


async def test_logger_receives_the_same_records(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    kids = Children()
    events: list[Any] = []
    with caplog.at_level(logging.INFO, logger="mcpvisor.supervisors"):
        async with open_supervisor([kids.spec("a")], on_event=events.append):
            kids.crash("a")
            await settle()
    logged = [r.event for r in caplog.records if hasattr(r, "event")]  # type: ignore[attr-defined]
    assert logged == events
    assert all(r.name == "mcpvisor.supervisors" for r in caplog.records)


async def test_a_raising_hook_is_logged_and_the_supervisor_carries_on(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    kids = Children()
    calls: list[Any] = []

    def broken(event: Any) -> None:
        calls.append(event)
        raise RuntimeError("hook bug")

    async with open_supervisor([kids.spec("a"), kids.spec("b")], on_event=broken) as sup:
        kids.crash("a")
        await settle()
        assert kids.entries("start") == ["a", "b", "a"]  # restarted despite the hook raising on every event
        assert all(r.running for r in sup.which_children())
    assert kids.entries("stop") == ["b", "a"]
    assert len(calls) == 7  # every event still reached the hook
    failures = [r for r in caplog.records if "on_event hook" in r.getMessage()]
    assert len(failures) == 7 and failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], RuntimeError)


async def test_a_raising_hook_does_not_break_a_dynamic_supervisor(autojump_clock: MockClock) -> None:
    kids = Children()

    def broken(event: Any) -> None:
        raise ValueError(event)

    async with open_dynamic_supervisor(on_event=broken) as sup:
        await sup.start_child(kids.spec("a"))
        kids.crash("a")
        await settle()
        await sup.terminate_child("a")
    assert kids.entries("start") == ["a", "a"] and kids.entries("stop") == ["a"]


async def test_an_async_hook_is_reported_not_silently_dropped(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    kids = Children()
    seen: list[Any] = []

    async def async_hook(event: Any) -> None:  # a common mistake: hooks are called synchronously
        seen.append(event)

    async with open_supervisor([kids.spec("a")], on_event=async_hook):
        pass
    assert seen == []
    errors = [r for r in caplog.records if "synchronous" in r.getMessage()]
    assert len(errors) == 3  # one per event: started, exited, stopped


async def test_events_compare_by_value(autojump_clock: MockClock) -> None:
    kids = Children()
    events: list[Any] = []
    async with open_supervisor([kids.spec("a")], name="s", on_event=events.append):
        pass
    assert ChildExited("s", "a", SHUTDOWN) in events
    assert SupervisorStopped("s", SHUTDOWN) == events[-1]
