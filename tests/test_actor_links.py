"""Links, monitors, wait_exit and the registry."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from mcpvisor.runtime.actors import (
    ActorExited,
    ActorRef,
    Caller,
    Down,
    Exit,
    LinkedExit,
    NameTaken,
    Registry,
    StopActor,
    current_actor,
    demonitor,
    link,
    monitor,
    spawn,
    trap_exits,
    unlink,
)
from mcpvisor.supervisors import NORMAL, SHUTDOWN, ExitReason


class Boom(Exception):
    pass


class Peer:
    """Crashes, stops or replies on request; records terminate."""

    def __init__(self) -> None:
        self.terminated: list[ExitReason] = []

    async def handle_cast(self, msg: Any) -> None:
        if msg == "crash":
            raise Boom("peer crashed")
        if msg == "stop":
            raise StopActor(NORMAL)
        if msg == "shutdown":
            raise StopActor(SHUTDOWN)

    async def handle_call(self, msg: Any, caller: Caller) -> Any:
        return msg

    async def terminate(self, reason: ExitReason) -> None:
        self.terminated.append(reason)


class Watcher:
    """Links to or monitors the refs it is told about and records its info messages."""

    def __init__(self, trap: bool = False) -> None:
        self.trap = trap
        self.infos: list[Any] = []
        self.terminated: list[ExitReason] = []
        self.monitors: dict[str, Any] = {}

    async def init(self) -> None:
        if self.trap:
            trap_exits()

    async def handle_call(self, msg: Any, caller: Caller) -> Any:
        op, target = msg
        if op == "link":
            link(target)
        elif op == "unlink":
            unlink(target)
        elif op == "monitor":
            self.monitors[target.label] = monitor(target)
        elif op == "demonitor":
            demonitor(self.monitors.pop(target.label))
        elif op == "infos":
            return list(self.infos)
        elif op == "self":
            return current_actor()
        return None

    async def handle_info(self, msg: Any) -> None:
        self.infos.append(msg)

    async def terminate(self, reason: ExitReason) -> None:
        self.terminated.append(reason)


async def test_monitor_delivers_down_with_the_reason_for_each_kind_of_exit() -> None:
    async with trio.open_nursery() as nursery:
        watcher = Watcher()
        w = await spawn(nursery, watcher, name="watcher")
        assert await w.call(("self", None)) is w
        normal = await spawn(nursery, Peer(), name="normal")
        shutdown = await spawn(nursery, Peer(), name="shutdown")
        for target in (normal, shutdown):
            await w.call(("monitor", target))
        await normal.cast("stop")
        await shutdown.cast("shutdown")
        await normal.wait_exit()
        await shutdown.wait_exit()
        await trio.testing.wait_all_tasks_blocked()
        infos = await w.call(("infos", None))
        assert {(d.ref, d.reason) for d in infos} == {(normal, NORMAL), (shutdown, SHUTDOWN)}
        assert all(isinstance(d, Down) for d in infos)
        assert not watcher.terminated  # monitors never stop the watcher
        await w.stop()


async def test_monitor_of_a_crash_carries_the_exception() -> None:
    async with trio.open_nursery() as outer:
        watcher = Watcher()
        w = await spawn(outer, watcher)
        crashed: list[ActorRef] = []
        with pytest.RaisesGroup(Boom):
            async with trio.open_nursery() as inner:
                peer = await spawn(inner, Peer())
                crashed.append(peer)
                await w.call(("monitor", peer))
                await peer.cast("crash")
        await trio.testing.wait_all_tasks_blocked()
        (down,) = await w.call(("infos", None))
        assert down.ref is crashed[0] and isinstance(down.reason, Boom)
        assert down.monitor is watcher.monitors[crashed[0].label]
        await w.stop()


async def test_monitor_of_an_exited_actor_delivers_down_at_once_and_demonitor_stops_it() -> None:
    async with trio.open_nursery() as nursery:
        w = await spawn(nursery, Watcher())
        dead = await spawn(nursery, Peer(), name="dead")
        await dead.stop()
        await w.call(("monitor", dead))
        alive = await spawn(nursery, Peer(), name="alive")
        await w.call(("monitor", alive))
        await w.call(("demonitor", alive))
        await alive.stop()
        await trio.testing.wait_all_tasks_blocked()
        infos = await w.call(("infos", None))
        assert [(d.ref, d.reason) for d in infos] == [(dead, NORMAL)]
        assert not alive._monitored_by
        await w.stop()


async def test_link_crash_kills_a_non_trapping_peer_with_linked_exit() -> None:
    watcher = Watcher(trap=False)
    refs: list[ActorRef] = []
    # Separate nurseries, so the peer's crash cancelling its own nursery does not also cancel w.
    with pytest.RaisesGroup(LinkedExit):
        async with trio.open_nursery() as w_nursery:
            w = await spawn(w_nursery, watcher)
            with pytest.RaisesGroup(Boom):
                async with trio.open_nursery() as peer_nursery:
                    peer = await spawn(peer_nursery, Peer())
                    refs += [w, peer]
                    await w.call(("link", peer))
                    await peer.cast("crash")
            await w.wait_exit()
    w, peer = refs
    assert isinstance(w.exit_reason, LinkedExit)
    assert w.exit_reason.peer is peer and isinstance(w.exit_reason.reason, Boom)
    assert w.exit_reason.__cause__ is peer.exit_reason
    assert watcher.terminated == [w.exit_reason]
    with pytest.raises(ActorExited):
        await w.call(("infos", None))


async def test_link_crash_interrupts_a_busy_peer() -> None:
    """As OTP's exit signal, a linked crash does not wait for the peer's current callback."""
    started = trio.Event()
    terminated: list[ExitReason] = []

    class Busy:
        async def handle_cast(self, msg: Any) -> None:
            if msg == "link":
                link(peer_box[0])
            else:
                started.set()
                await trio.sleep_forever()

        async def terminate(self, reason: ExitReason) -> None:
            terminated.append(reason)

    peer_box: list[ActorRef] = []
    with pytest.RaisesGroup(LinkedExit):
        async with trio.open_nursery() as busy_nursery:
            busy = await spawn(busy_nursery, Busy())
            with pytest.RaisesGroup(Boom):
                async with trio.open_nursery() as peer_nursery:
                    peer_box.append(await spawn(peer_nursery, Peer()))
                    await busy.cast("link")
                    await busy.cast("sleep")
                    await started.wait()
                    await peer_box[0].cast("crash")
            await busy.wait_exit()
    assert len(terminated) == 1 and isinstance(terminated[0], LinkedExit)


async def test_trapping_peer_receives_exit_and_keeps_running() -> None:
    async with trio.open_nursery() as outer:
        watcher = Watcher(trap=True)
        w = await spawn(outer, watcher)
        peers: list[ActorRef] = []
        with pytest.RaisesGroup(Boom):
            async with trio.open_nursery() as inner:
                crasher = await spawn(inner, Peer())
                stopper = await spawn(inner, Peer())
                peers += [crasher, stopper]
                await w.call(("link", crasher))
                await w.call(("link", stopper))
                await stopper.cast("stop")
                await stopper.wait_exit()
                await crasher.cast("crash")
        await trio.testing.wait_all_tasks_blocked()
        infos = await w.call(("infos", None))
        assert [type(m) for m in infos] == [Exit, Exit]
        assert infos[0] == Exit(peers[1], NORMAL)
        assert infos[1].ref is peers[0] and isinstance(infos[1].reason, Boom)
        assert w.alive
        await w.stop()


async def test_normal_exit_does_not_travel_a_link_and_shutdown_does() -> None:
    async with trio.open_nursery() as nursery:
        a_behaviour = Watcher()
        a = await spawn(nursery, a_behaviour)
        normal_peer = await spawn(nursery, Peer())
        await a.call(("link", normal_peer))
        await normal_peer.cast("stop")
        await normal_peer.wait_exit()
        await trio.testing.wait_all_tasks_blocked()
        assert a.alive and await a.call(("infos", None)) == []

        shutdown_peer = await spawn(nursery, Peer())
        await a.call(("link", shutdown_peer))
        await shutdown_peer.cast("shutdown")
        assert await a.wait_exit() is SHUTDOWN
        assert a_behaviour.terminated == [SHUTDOWN]


async def test_unlink_and_exit_of_the_linking_side_reaches_the_peer() -> None:
    async with trio.open_nursery() as nursery:
        a = await spawn(nursery, Watcher())
        b_behaviour = Peer()
        b = await spawn(nursery, b_behaviour)
        await a.call(("link", b))
        await a.call(("unlink", b))
        await a.stop(SHUTDOWN)
        await trio.testing.wait_all_tasks_blocked()
        assert b.alive  # unlinked: a's shutdown did not reach b
        c = await spawn(nursery, Watcher())
        await c.call(("link", b))
        await c.stop(SHUTDOWN)  # links are two-way: c's exit stops b
        assert await b.wait_exit() is SHUTDOWN
        assert b_behaviour.terminated == [SHUTDOWN]


async def test_wait_exit_from_plain_code() -> None:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Peer())
        got: list[ExitReason] = []

        async def waiter() -> None:
            got.append(await ref.wait_exit())

        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        assert await ref.stop() is NORMAL
        await trio.testing.wait_all_tasks_blocked()
        assert got == [NORMAL, NORMAL]
        assert await ref.wait_exit() is NORMAL  # after the fact: at once


async def test_registry_registers_finds_and_forgets_on_exit() -> None:
    registry = Registry()
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Peer(), name="svc", registry=registry)
        assert registry.whereis("svc") is ref and "svc" in registry and list(registry) == ["svc"]
        with pytest.raises(NameTaken) as info:
            await spawn(nursery, Peer(), name="svc", registry=registry)
        assert info.value.holder is ref and "svc" in str(info.value)
        await ref.stop()
        assert registry.whereis("svc") is None and len(registry) == 0
        again = await spawn(nursery, Peer(), name="svc", registry=registry)
        assert registry.whereis("svc") is again
        registry.unregister("svc")
        assert registry.whereis("svc") is None
        registry.register("other", again)
        await again.stop()
        assert registry.whereis("other") is None
        with pytest.raises(ActorExited):
            registry.register("late", again)


async def test_registry_forgets_a_crashed_actor_and_two_registries_are_independent() -> None:
    first, second = Registry(), Registry()
    with pytest.RaisesGroup(Boom):
        async with trio.open_nursery() as nursery:
            ref = await spawn(nursery, Peer(), name="x", registry=first)
            second.register("x", ref)
            other = await spawn(nursery, Peer(), name="x", registry=Registry())
            assert first.whereis("x") is ref and second.whereis("x") is ref
            assert other is not ref
            await ref.cast("crash")
            await ref.wait_exit()
            assert first.whereis("x") is None and second.whereis("x") is None
            await other.stop()
