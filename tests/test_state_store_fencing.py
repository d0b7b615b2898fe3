"""Fencing of state store operations: an operation answered with an error is never applied later.

Issue 7, item 5: during a Redis outage, writes that had been answered with an error (the caller's call
timed out) were still queued in the StateStoreServer's mailbox and ran once Redis came back. Now each
operation carries its caller's deadline; the actor runs it only if the caller still waits, and a caller
whose operation is already running waits for its outcome (bounded) instead of reporting a failure that
the store would contradict. All timing here runs on trio's MockClock.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
from mcpvisor.backends import BackendOutcomeUnknown, MemorySessionStore
from mcpvisor.runtime.actors import ActorRef, Registry, spawn
from mcpvisor.runtime.tree._state_store_server import (
    STATE_STORE_NAME,
    Fenced,
    StateStoreClient,
    StateStoreOutcomeUnknown,
    StateStoreServer,
    StateStoreTimeout,
    Store,
    StoreFailed,
)
from trio.testing import MockClock, wait_all_tasks_blocked


class GatedStore(MemorySessionStore):
    """A memory store whose ``put`` can be held at a gate (a backend that hangs, like a paused Redis),
    and which records every write that was applied, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: trio.Event | None = None
        self.applied: list[bytes] = []
        self.fail_unknown = False

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_unknown:
            raise BackendOutcomeUnknown("sent, no answer")
        await super().put(session_id, key, value, ttl=ttl)
        self.applied.append(value)


async def _start(
    nursery: trio.Nursery, store: GatedStore, **client: Any
) -> tuple[StateStoreServer, StateStoreClient, ActorRef]:
    registry = Registry()
    behaviour = StateStoreServer(store)
    ref = await spawn(nursery, behaviour, name=STATE_STORE_NAME, registry=registry)
    return behaviour, StateStoreClient(registry, **client), ref


async def test_a_write_queued_past_its_deadline_is_never_applied(autojump_clock: MockClock) -> None:
    store = GatedStore()
    store.gate = trio.Event()
    outcomes: dict[bytes, str] = {}
    async with trio.open_nursery() as nursery:
        actor, client, _ = await _start(nursery, store, timeout=1.0, outcome_wait=0.5)

        async def write(value: bytes) -> None:
            try:
                await client.put("s", "k", value)
                outcomes[value] = "ok"
            except StateStoreTimeout:
                outcomes[value] = "not applied"
            except StateStoreOutcomeUnknown:
                outcomes[value] = "unknown"

        nursery.start_soon(write, b"first")  # reaches the backend and hangs there
        await wait_all_tasks_blocked()
        for value in (b"second", b"third"):  # wait in the mailbox behind it
            nursery.start_soon(write, value)
        await wait_all_tasks_blocked()
        await trio.sleep(1.6)  # every deadline (1 s) and the first's outcome wait (0.5 s) have passed
        assert outcomes == {b"first": "unknown", b"second": "not applied", b"third": "not applied"}
        store.gate.set()  # the backend comes back
        await wait_all_tasks_blocked()
        # Only the one that was running lands (its caller was told "outcome unknown", not "failed");
        # the queued ones, answered "not applied", never run.
        assert store.applied == [b"first"]
        assert actor.skipped == 2
        await client.put("s", "k", b"after")  # the actor carries on
        assert store.applied == [b"first", b"after"]
        nursery.cancel_scope.cancel()


async def test_a_running_write_that_finishes_within_the_outcome_wait_is_reported_as_done(
    autojump_clock: MockClock,
) -> None:
    """Past the deadline, but the backend answers during the outcome wait: the caller gets success,
    which is what happened (not an error for a write that landed)."""
    store = GatedStore()
    store.gate = trio.Event()
    async with trio.open_nursery() as nursery:
        _, client, _ = await _start(nursery, store, timeout=1.0, outcome_wait=5.0)

        async def open_gate() -> None:
            await trio.sleep(3.0)
            assert store.gate is not None
            store.gate.set()

        nursery.start_soon(open_gate)
        start = trio.current_time()
        await client.put("s", "k", b"late but fine")
        assert trio.current_time() - start == pytest.approx(3.0)
        assert store.applied == [b"late but fine"]
        nursery.cancel_scope.cancel()


async def test_a_caller_cancelled_while_queued_leaves_no_write(autojump_clock: MockClock) -> None:
    store = GatedStore()
    store.gate = trio.Event()
    async with trio.open_nursery() as nursery:
        actor, client, _ = await _start(nursery, store, timeout=None)
        nursery.start_soon(client.put, "s", "k", b"running")
        await wait_all_tasks_blocked()
        with trio.move_on_after(0.1):  # a request cancelled (notifications/cancelled, a crash)
            await client.put("s", "k", b"cancelled")
        store.gate.set()
        await wait_all_tasks_blocked()
        assert store.applied == [b"running"]
        assert actor.skipped == 1
        nursery.cancel_scope.cancel()


async def test_the_actor_refuses_an_operation_whose_deadline_has_passed(autojump_clock: MockClock) -> None:
    """The actor's own check: a caller still waiting but past its deadline gets "not applied"."""
    store = GatedStore()
    async with trio.open_nursery() as nursery:
        _, _, ref = await _start(nursery, store)
        late = Fenced(Store("s", "k", b"late"), deadline=trio.current_time())
        reply = await ref.call(late, timeout=None)
        assert type(reply) is StoreFailed
        assert isinstance(reply.error, StateStoreTimeout)
        assert "not applied" in str(reply.error)
        assert not late.started
        on_time = Fenced(Store("s", "k", b"on time"), deadline=math.inf)
        assert await ref.call(on_time, timeout=None) is None
        assert on_time.started and on_time.finished
        assert store.applied == [b"on time"]
        nursery.cancel_scope.cancel()


async def test_a_backend_that_cannot_tell_makes_the_caller_say_outcome_unknown(
    autojump_clock: MockClock,
) -> None:
    store = GatedStore()
    store.fail_unknown = True
    async with trio.open_nursery() as nursery:
        _, client, _ = await _start(nursery, store)
        with pytest.raises(StateStoreOutcomeUnknown, match="may or may not") as info:
            await client.put("s", "secret-key", b"v")
        assert isinstance(info.value.__cause__, BackendOutcomeUnknown)
        with pytest.raises(StateStoreOutcomeUnknown):  # an update's write is fenced the same way
            await client.update("s", "n", lambda n: n + 1, 0)
        nursery.cancel_scope.cancel()


async def test_the_timeout_message_says_not_applied_and_what_to_do(autojump_clock: MockClock) -> None:
    store = GatedStore()
    store.gate = trio.Event()
    async with trio.open_nursery() as nursery:
        _, client, _ = await _start(nursery, store, timeout=2.0, outcome_wait=0.0)
        nursery.start_soon(client.put, "s", "k", b"hangs")
        await wait_all_tasks_blocked()
        with pytest.raises(StateStoreTimeout) as info:
            await client.update("s", "n", lambda n: n + 1, 0)
        text = str(info.value)
        assert "within 2s" in text and "not applied and never will be" in text
        assert "'n'" in text  # names the key, never the value
        nursery.cancel_scope.cancel()


def test_client_options_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        StateStoreClient(Registry(), timeout=0)
    with pytest.raises(ValueError, match="outcome_wait"):
        StateStoreClient(Registry(), outcome_wait=-1)
