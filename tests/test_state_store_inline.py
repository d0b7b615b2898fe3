"""The state store's short cut: a read or write of an idle in-process ``MemorySessionStore`` runs in
the caller's task instead of two trips through the StateStoreServer actor. It must behave as the actor
would: taken only when nothing is queued before it, never for a store whose ``get``/``put`` are not the
memory store's own, still a checkpoint (cancellable before anything is applied, and a schedule point),
and a backend error reaches the caller as through the actor."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from mcpvisor.backends import BackendClosed, MemorySessionStore
from mcpvisor.runtime.actors import ActorRef, Registry, spawn
from mcpvisor.runtime.tree._state_store_server import STATE_STORE_NAME, StateStoreClient, StateStoreServer


class CountingServer(StateStoreServer):
    """Counts the operations that went through the actor's mailbox."""

    def __init__(self, store: MemorySessionStore) -> None:
        super().__init__(store)
        self.through_actor = 0
        self.order: list[str] = []

    async def handle_call(self, msg: Any, caller: Any) -> Any:
        self.through_actor += 1
        self.order.append("call")
        return await super().handle_call(msg, caller)

    async def handle_cast(self, msg: Any) -> None:
        self.order.append(f"cast {msg}")


class SlowReads(MemorySessionStore):
    """A memory store whose reads wait: the short cut must not bypass an overridden ``get``."""

    async def get(self, session_id: str, key: str) -> bytes | None:
        await trio.lowlevel.checkpoint()
        value = await super().get(session_id, key)
        return None if value is None else b"slow:" + value


async def _start(
    nursery: trio.Nursery, store: MemorySessionStore
) -> tuple[CountingServer, StateStoreClient, ActorRef]:
    registry = Registry()
    behaviour = CountingServer(store)
    ref = await spawn(nursery, behaviour, name=STATE_STORE_NAME, registry=registry)
    return behaviour, StateStoreClient(registry, store=store), ref


async def test_reads_and_writes_of_an_idle_memory_store_skip_the_mailbox() -> None:
    async with trio.open_nursery() as nursery:
        actor, client, _ = await _start(nursery, MemorySessionStore())
        await client.put("s", "k", b"1")
        assert await client.get("s", "k") == b"1"
        assert await client.get("s", "missing") is None
        assert actor.through_actor == 0
        assert client.operations == 3
        assert await client.delete("s", "k") is True  # other operations still go through the actor
        assert actor.through_actor == 1
        assert await client.get("s", "k") is None
        nursery.cancel_scope.cancel()


async def test_an_overridden_get_is_never_bypassed() -> None:
    async with trio.open_nursery() as nursery:
        actor, client, _ = await _start(nursery, SlowReads())
        await client.put("s", "k", b"1")
        assert await client.get("s", "k") == b"slow:1"
        assert actor.through_actor == 2
        nursery.cancel_scope.cancel()


async def test_a_read_while_the_actor_has_mail_waits_its_turn() -> None:
    # Mail queued ahead (the actor woken, not yet run): a read sent now must go behind it through the
    # mailbox, as it always did, never around it.
    async with trio.open_nursery() as nursery:
        actor, client, ref = await _start(nursery, MemorySessionStore())
        await client.put("s", "n", b"1")
        ref.send_nowait("ahead")
        assert await client.get("s", "n") == b"1"
        assert actor.order == ["cast ahead", "call"]
        nursery.cancel_scope.cancel()


async def test_a_cancelled_caller_gets_nothing_applied() -> None:
    async with trio.open_nursery() as nursery:
        _, client, _ = await _start(nursery, MemorySessionStore())
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.put("s", "k", b"written")
        assert scope.cancelled_caught
        assert await client.get("s", "k") is None
        nursery.cancel_scope.cancel()


async def test_a_polling_loop_still_yields_to_other_tasks() -> None:
    # A tool that polls a value until another task sets it must let that task run: every operation is
    # a schedule point, even when it never waits for the actor.
    async with trio.open_nursery() as nursery:
        _, client, _ = await _start(nursery, MemorySessionStore())
        flag = trio.Event()

        async def setter() -> None:
            flag.set()

        nursery.start_soon(setter)  # runs at the poller's first schedule point
        polls = 0
        while not flag.is_set() and polls < 1000:  # bounded: a loop that never yields ends unset
            await client.get("s", "flag")
            polls += 1
        assert flag.is_set()
        assert polls <= 2
        nursery.cancel_scope.cancel()


async def test_a_backend_error_reaches_the_caller() -> None:
    async with trio.open_nursery() as nursery:
        store = MemorySessionStore()
        actor, client, _ = await _start(nursery, store)
        await store.aclose()
        with pytest.raises(BackendClosed):
            await client.get("s", "k")
        with pytest.raises(BackendClosed):
            await client.put("s", "k", b"1")
        assert actor.through_actor == 0
        with pytest.raises(BackendClosed):  # through the actor: the same error, and the actor lives on
            await client.delete("s", "k")
        assert actor.through_actor == 1
        nursery.cancel_scope.cancel()


class SlowDrops(MemorySessionStore):
    """A memory store whose session drop waits: the short cut must not bypass it."""

    async def drop_session(self, session_id: str) -> None:
        await trio.lowlevel.checkpoint()
        await super().drop_session(session_id)


async def test_a_session_drop_of_an_idle_memory_store_skips_the_mailbox() -> None:
    async with trio.open_nursery() as nursery:
        store = MemorySessionStore()
        actor, client, _ = await _start(nursery, store)
        await client.put("s", "k", b"1")
        await client.put("other", "k", b"2")
        await client.drop_session("s")
        assert actor.through_actor == 0
        assert await client.get("s", "k") is None
        assert await client.get("other", "k") == b"2"  # only that session's values
        assert store._live == 1  # the count the heap compaction relies on
        nursery.cancel_scope.cancel()


async def test_an_overridden_drop_is_never_bypassed() -> None:
    async with trio.open_nursery() as nursery:
        actor, client, _ = await _start(nursery, SlowDrops())
        await client.put("s", "k", b"1")
        await client.drop_session("s")
        assert await client.get("s", "k") is None
        assert actor.through_actor == 3  # put, drop and get: the whole store goes through the actor
        nursery.cancel_scope.cancel()


async def test_yield_after_false_skips_only_the_yield_after() -> None:
    # The runtime's own settings write at initialize skips the schedule point after the operation, never
    # the cancellation check before it; the drop at a session's end (``try_drop_now``) has none.
    async with trio.open_nursery() as nursery:
        store = MemorySessionStore()
        _, client, _ = await _start(nursery, store)
        ran = trio.Event()

        async def other() -> None:
            ran.set()

        nursery.start_soon(other)
        await client.put("s", "k", b"1", yield_after=False)
        assert store.get_now("s", "k") == b"1"
        assert client.try_drop_now("s")
        assert not ran.is_set()  # no schedule point in either
        assert store.get_now("s", "k") is None
        puts = 0
        while not ran.is_set() and puts < 100:  # bounded: operations that never yield end unset
            await client.put("s", "k", b"2")  # the default yields (trio picks who runs first after)
            puts += 1
        assert ran.is_set()
        assert puts <= 2
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.put("s", "k", b"cancelled", yield_after=False)
        assert scope.cancelled_caught
        assert await client.get("s", "k") == b"2"
        nursery.cancel_scope.cancel()


async def test_try_drop_now_declines_what_the_actor_must_do() -> None:
    # An overridden drop, or mail queued ahead of it: not done here (False), and nothing dropped.
    async with trio.open_nursery() as nursery:
        actor, client, _ = await _start(nursery, SlowDrops())
        await client.put("s", "k", b"1")
        assert not client.try_drop_now("s")
        assert await client.get("s", "k") == b"1"
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        actor, client, ref = await _start(nursery, MemorySessionStore())
        await client.put("s", "k", b"1")
        ref.send_nowait("queued")  # the actor has mail: the drop must wait its turn behind it
        assert not client.try_drop_now("s")
        assert await client.get("s", "k") == b"1"
        assert actor.order == ["cast queued", "call"]  # the get went behind the cast, through the actor
        nursery.cancel_scope.cancel()
