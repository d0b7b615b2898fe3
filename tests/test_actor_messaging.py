"""call / cast / send_nowait, mailbox bounds, timeouts, exit reasons and terminate."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from mcpvisor.runtime.actors import (
    NO_REPLY,
    ActorExited,
    Behaviour,
    Caller,
    CallTimeout,
    MailboxFull,
    StopActor,
    spawn,
)
from mcpvisor.supervisors import NORMAL, SHUTDOWN, ExitReason


class Boom(Exception):
    pass


class Recorder:
    """A plain class (no base): records what it saw and the terminate reason."""

    def __init__(self) -> None:
        self.casts: list[Any] = []
        self.terminated: list[ExitReason] = []

    async def handle_call(self, msg: Any, caller: Caller) -> Any:
        if msg == "boom":
            raise Boom("in handle_call")
        if msg == "stop":
            raise StopActor(NORMAL, reply="bye")
        if isinstance(msg, tuple) and msg[0] == "sleep":
            await trio.sleep(msg[1])
            return ("slept", msg[1])
        if msg == "casts":
            return list(self.casts)
        return ("echo", msg)

    async def handle_cast(self, msg: Any) -> None:
        if msg == "boom":
            raise Boom("in handle_cast")
        if msg == "stop-shutdown":
            raise StopActor(SHUTDOWN)
        self.casts.append(msg)

    async def terminate(self, reason: ExitReason) -> None:
        self.terminated.append(reason)


async def test_call_returns_the_reply() -> None:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder())
        assert await ref.call(1) == ("echo", 1)
        assert await ref.call("x", timeout=None) == ("echo", "x")
        await ref.stop()


async def test_casts_arrive_in_order_before_a_later_call() -> None:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder())
        for i in range(5):
            await ref.cast(i)
        ref.send_nowait(5)
        assert await ref.call("casts") == [0, 1, 2, 3, 4, 5]
        await ref.stop()


async def test_send_nowait_raises_mailbox_full_naming_actor_and_capacity() -> None:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder(), mailbox_size=3, name="tiny")
        for i in range(3):
            ref.send_nowait(i)  # the actor has not run yet: the mailbox fills up
        with pytest.raises(MailboxFull) as info:
            ref.send_nowait(3)
        assert info.value.capacity == 3
        assert "tiny" in str(info.value) and "3" in str(info.value)
        assert await ref.call("casts") == [0, 1, 2]
        await ref.stop()


async def test_cast_waits_for_room_when_the_mailbox_is_full() -> None:
    gate = trio.Event()
    seen: list[int] = []

    class Slow:
        async def handle_cast(self, msg: int) -> None:
            await gate.wait()
            seen.append(msg)

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Slow(), mailbox_size=2)
        done = trio.Event()

        async def producer() -> None:
            for i in range(6):
                await ref.cast(i)
            done.set()

        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        # One message is being handled, two wait in the mailbox; the producer is blocked on room.
        assert not done.is_set()
        assert len(ref._queue) == 2
        gate.set()
        await done.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert seen == list(range(6))
        await ref.stop()


async def test_call_timeout_and_late_reply_is_dropped(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder())
        start = trio.current_time()
        with pytest.raises(CallTimeout) as info:
            await ref.call(("sleep", 10), timeout=1.0)
        assert trio.current_time() - start == pytest.approx(1.0)
        assert info.value.timeout == 1.0
        # The next caller must get its own reply, not the late ("slept", 10).
        assert await ref.call("next", timeout=math.inf) == ("echo", "next")
        assert trio.current_time() - start == pytest.approx(10.0)
        await ref.stop()


async def test_many_timed_out_calls_never_leak_replies(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder())
        for i in range(5):
            with pytest.raises(CallTimeout):
                await ref.call(("sleep", 2 + i), timeout=1.0)
        for i in range(5):
            assert await ref.call(i, timeout=100) == ("echo", i)
        await ref.stop()


async def test_call_to_exited_actor_raises_actor_exited_with_normal() -> None:
    async with trio.open_nursery() as nursery:
        rec = Recorder()
        ref = await spawn(nursery, rec)
        assert await ref.call("stop") == "bye"
        assert await ref.wait_exit() is NORMAL
        assert rec.terminated == [NORMAL]
        with pytest.raises(ActorExited) as info:
            await ref.call(1)
        assert info.value.reason is NORMAL
        with pytest.raises(ActorExited):
            await ref.cast(1)
        with pytest.raises(ActorExited):
            ref.send_nowait(1)
        assert not ref.alive and ref.exit_reason is NORMAL


async def test_stop_actor_shutdown_from_cast() -> None:
    async with trio.open_nursery() as nursery:
        rec = Recorder()
        ref = await spawn(nursery, rec)
        await ref.cast("stop-shutdown")
        assert await ref.wait_exit() is SHUTDOWN
        assert rec.terminated == [SHUTDOWN]
        with pytest.raises(ActorExited) as info:
            await ref.call(1)
        assert info.value.reason is SHUTDOWN


async def test_crash_in_handle_call_fails_the_caller_and_raises_out_of_the_task() -> None:
    rec = Recorder()
    caught: list[BaseException] = []
    with pytest.RaisesGroup(Boom):
        async with trio.open_nursery() as nursery:
            ref = await spawn(nursery, rec)
            try:
                await ref.call("boom", timeout=None)
            except ActorExited as exc:
                caught.append(exc)
    assert len(caught) == 1
    exited = caught[0]
    assert isinstance(exited, ActorExited)
    assert isinstance(exited.reason, Boom)
    assert len(rec.terminated) == 1 and rec.terminated[0] is exited.reason


async def test_crash_fails_queued_callers_too() -> None:
    gate = trio.Event()

    class CrashLater:
        async def handle_cast(self, msg: Any) -> None:
            await gate.wait()
            raise Boom("later")

    results: list[object] = []
    with pytest.RaisesGroup(Boom):
        async with trio.open_nursery() as nursery:
            ref = await spawn(nursery, CrashLater())

            async def queued_call(i: int) -> None:
                try:
                    await ref.call(i)
                except ActorExited as exc:
                    results.append(exc.reason)

            ref.send_nowait("crash")
            for i in range(3):
                nursery.start_soon(queued_call, i)
            await trio.testing.wait_all_tasks_blocked()
            assert len(ref._queue) == 3
            gate.set()
    assert len(results) == 3 and all(isinstance(r, Boom) for r in results)


async def test_stop_with_a_pending_message_fails_its_caller() -> None:
    gate = trio.Event()

    class Blocked:
        async def handle_call(self, msg: Any, caller: Caller) -> Any:
            await gate.wait()
            return msg

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Blocked())
        outcomes: dict[int, object] = {}

        async def call(i: int) -> None:
            try:
                outcomes[i] = await ref.call(i)
            except ActorExited as exc:
                outcomes[i] = exc.reason

        nursery.start_soon(call, 1)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(call, 2)
        await trio.testing.wait_all_tasks_blocked()
        ref.request_stop(NORMAL)
        gate.set()
        assert await ref.wait_exit() is NORMAL
        await trio.testing.wait_all_tasks_blocked()
        # The message in progress finishes; the queued one is never handled.
        assert outcomes == {1: 1, 2: NORMAL}


async def test_deferred_reply_with_no_reply() -> None:
    class Deferring(Behaviour):
        def __init__(self) -> None:
            self.waiting: list[Caller] = []

        async def handle_call(self, msg: Any, caller: Caller) -> Any:
            if msg == "wait":
                self.waiting.append(caller)
                return NO_REPLY
            for c in self.waiting:
                c.reply(("released", msg))
            self.waiting.clear()
            return "ok"

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Deferring())
        got: list[Any] = []

        async def waiter() -> None:
            got.append(await ref.call("wait"))

        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        assert await ref.call("go") == "ok"
        await trio.testing.wait_all_tasks_blocked()
        assert got == [("released", "go"), ("released", "go")]
        # A deferred caller still waiting when the actor stops gets ActorExited.
        late: list[object] = []

        async def late_waiter() -> None:
            try:
                await ref.call("wait")
            except ActorExited as exc:
                late.append(exc.reason)

        nursery.start_soon(late_waiter)
        await trio.testing.wait_all_tasks_blocked()
        await ref.stop(SHUTDOWN)
        await trio.testing.wait_all_tasks_blocked()
        assert late == [SHUTDOWN]


async def test_crash_in_terminate_becomes_the_exit_reason() -> None:
    class BadTerminate:
        async def terminate(self, reason: ExitReason) -> None:
            raise Boom("terminate")

    with pytest.RaisesGroup(Boom):
        async with trio.open_nursery() as nursery:
            ref = await spawn(nursery, BadTerminate())
            ref.request_stop(NORMAL)
            reason = await ref.wait_exit()
            assert isinstance(reason, Boom)


async def test_init_failure_fails_the_start_and_terminate_is_not_called() -> None:
    terminated: list[ExitReason] = []

    class BadInit:
        async def init(self) -> None:
            raise Boom("init")

        async def terminate(self, reason: ExitReason) -> None:
            terminated.append(reason)

    async with trio.open_nursery() as nursery:
        with pytest.raises(Boom):
            await spawn(nursery, BadInit())
    assert terminated == []


async def test_init_runs_before_start_returns() -> None:
    class Init:
        ready = False

        async def init(self) -> None:
            await trio.lowlevel.checkpoint()
            self.ready = True

        async def handle_call(self, msg: Any, caller: Caller) -> Any:
            return self.ready

    async with trio.open_nursery() as nursery:
        behaviour = Init()
        ref = await spawn(nursery, behaviour)
        assert behaviour.ready
        assert await ref.call("ready?") is True
        await ref.stop()


async def test_default_handle_call_crashes_with_a_clear_error() -> None:
    class CastOnly:
        async def handle_cast(self, msg: Any) -> None:
            pass

    with pytest.RaisesGroup(pytest.RaisesExc(NotImplementedError, match="CastOnly")):
        async with trio.open_nursery() as nursery:
            ref = await spawn(nursery, CastOnly())
            with pytest.raises(ActorExited):
                await ref.call("hi")


async def test_cancelled_from_outside_fails_callers_with_shutdown_and_skips_terminate() -> None:
    rec = Recorder()
    async with trio.open_nursery() as outer:
        inner_scope = trio.CancelScope()
        ref_box: list[Any] = []

        async def host(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with inner_scope:
                async with trio.open_nursery() as nursery:
                    ref_box.append(await spawn(nursery, rec))
                    task_status.started()
                    await trio.sleep_forever()

        await outer.start(host)
        ref = ref_box[0]
        inner_scope.cancel()
        assert await ref.wait_exit() is SHUTDOWN
    assert rec.terminated == []
    with pytest.raises(ActorExited):
        await ref.call(1)


async def test_actor_calling_itself_is_refused() -> None:
    class SelfCaller:
        async def handle_call(self, msg: Any, caller: Caller) -> Any:
            from mcpvisor.runtime.actors import current_actor

            try:
                await current_actor().call("again")
            except RuntimeError as exc:
                return str(exc)
            return "no error"

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, SelfCaller())
        assert "called itself" in await ref.call("go")
        await ref.stop()


async def test_mailbox_size_must_be_positive() -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(ValueError, match="mailbox_size"):
            await spawn(nursery, Recorder(), mailbox_size=0)


async def test_busy_actor_yields_to_other_tasks() -> None:
    """A long run of queued casts does not starve other tasks (the actor yields every few messages)."""
    ticks: list[int] = []

    class Counter:
        count = 0

        async def handle_cast(self, msg: Any) -> None:
            self.count += 1

    async with trio.open_nursery() as nursery:
        counter = Counter()
        ref = await spawn(nursery, counter, mailbox_size=1000)
        for i in range(500):
            ref.send_nowait(i)

        async def ticker() -> None:
            ticks.append(counter.count)

        nursery.start_soon(ticker)
        await trio.testing.wait_all_tasks_blocked()
        assert counter.count == 500
        assert ticks and ticks[0] < 500
        await ref.stop()


async def test_senders_waiting_for_room_get_actor_exited_when_it_dies() -> None:
    gate = trio.Event()

    class Stuck:
        async def handle_cast(self, msg: Any) -> None:
            await gate.wait()
            raise StopActor(SHUTDOWN)

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Stuck(), mailbox_size=1)
        await ref.cast("first")  # being handled
        await trio.testing.wait_all_tasks_blocked()
        ref.send_nowait("queued")  # fills the mailbox
        errors: list[object] = []

        async def blocked_call() -> None:
            try:
                await ref.call("x", timeout=None)
            except ActorExited as exc:
                errors.append(exc.reason)

        async def blocked_cast() -> None:
            try:
                await ref.cast("y")
            except ActorExited as exc:
                errors.append(exc.reason)

        nursery.start_soon(blocked_call)
        nursery.start_soon(blocked_cast)
        await trio.testing.wait_all_tasks_blocked()
        assert errors == []
        gate.set()
        assert await ref.wait_exit() is SHUTDOWN
        await trio.testing.wait_all_tasks_blocked()
        assert errors == [SHUTDOWN, SHUTDOWN]


async def test_stop_times_out_with_call_timeout(autojump_clock: trio.testing.MockClock) -> None:
    class SlowTerminate:
        async def terminate(self, reason: ExitReason) -> None:
            await trio.sleep(10)

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, SlowTerminate())
        with pytest.raises(CallTimeout):
            await ref.stop(timeout=1.0)
        assert not ref.alive  # stopping, terminate still running
        assert await ref.wait_exit() is NORMAL


async def test_monitors_of_an_exited_watcher_are_cleaned_up() -> None:
    from mcpvisor.runtime.actors import monitor

    class Watch:
        async def handle_call(self, msg: Any, caller: Caller) -> Any:
            monitor(msg)

    async with trio.open_nursery() as nursery:
        target = await spawn(nursery, Recorder())
        for _ in range(5):
            watcher = await spawn(nursery, Watch())
            await watcher.call(target)
            await watcher.stop()
        assert not target._monitored_by  # no leak of dead watchers' monitors
        await target.stop()


async def test_a_shorter_timeout_after_a_longer_one_fires_on_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from mcpvisor.runtime.actors._call_timer import call_timer

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder())
        fired: dict[str, float] = {}

        async def timed_call(label: str, timeout: float) -> None:
            with pytest.raises(CallTimeout):
                await ref.call(("sleep", 100), timeout=timeout)
            fired[label] = trio.current_time()

        async with trio.open_nursery() as callers:
            callers.start_soon(timed_call, "long", 10.0)
            await trio.testing.wait_all_tasks_blocked()
            callers.start_soon(timed_call, "short", 1.0)
        assert fired == {"short": pytest.approx(1.0), "long": pytest.approx(10.0)}
        # Every timed call has settled: the timer holds nothing.
        assert all(not group for group in call_timer()._groups.values())
        ref.request_stop()


async def test_cancelled_call_leaves_nothing_in_the_timer(autojump_clock: trio.testing.MockClock) -> None:
    from mcpvisor.runtime.actors._call_timer import call_timer

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder())
        with trio.move_on_after(2):
            await ref.call(("sleep", 5), timeout=30)
        assert all(not group for group in call_timer()._groups.values())
        assert await ref.call("after", timeout=30) == ("echo", "after")
        await ref.stop()


async def test_call_waiting_for_room_times_out(autojump_clock: trio.testing.MockClock) -> None:
    gate = trio.Event()

    class Stuck:
        async def handle_cast(self, msg: Any) -> None:
            await gate.wait()

        async def handle_call(self, msg: Any, caller: Caller) -> Any:
            return msg

    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Stuck(), mailbox_size=1)
        await ref.cast("busy")
        await trio.testing.wait_all_tasks_blocked()
        ref.send_nowait("queued")
        start = trio.current_time()
        with pytest.raises(CallTimeout):
            await ref.call("x", timeout=3)
        assert trio.current_time() - start == pytest.approx(3)
        gate.set()
        assert await ref.call("y", timeout=3) == "y"
        await ref.stop()


async def test_negative_timeout_is_refused() -> None:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Recorder())
        with pytest.raises(ValueError, match="timeout"):
            await ref.call(1, timeout=-1)
        await ref.stop()
