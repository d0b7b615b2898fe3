"""Memory backends: what the kit cannot see (exact expire counts, bounded heap, closed state)."""

from __future__ import annotations

import pytest
from mcpvisor.backends import (
    BackendClosed,
    MemorySessionStore,
    MemoryTaskBackend,
    SessionStateStore,
    TaskBackend,
    TaskRecord,
    TaskStatus,
)
from mcpvisor.backends.testing import FakeClock


async def test_expire_removes_exactly_what_is_due() -> None:
    clock = FakeClock(100.0)
    store = MemorySessionStore(clock=clock, default_ttl=50.0)
    await store.put("s", "short", b"1", ttl=1.0)
    await store.put("s", "long", b"2", ttl=10.0)
    await store.put("s", "default", b"3")
    await store.put("t", "short", b"4", ttl=1.0)
    clock.advance(1.0)
    assert await store.expire() == 2
    assert await store.keys("s") == ["default", "long"]
    clock.advance(49.0)
    assert await store.expire() == 2
    assert await store.keys("s") == []


async def test_overwrite_moves_the_expiry_and_the_stale_heap_entry_is_skipped() -> None:
    clock = FakeClock(0.0)
    store = MemorySessionStore(clock=clock)
    await store.put("s", "k", b"old", ttl=1.0)
    await store.put("s", "k", b"new", ttl=5.0)
    clock.advance(2.0)
    assert await store.expire() == 0
    assert await store.get("s", "k") == b"new"


async def test_heap_stays_bounded_under_overwrites() -> None:
    store = MemorySessionStore()
    for i in range(20_000):
        await store.put("s", "k", i.to_bytes(4, "big"), ttl=60.0)
    assert len(store._heap) <= 2 * 1 + 1024 + 1


async def test_no_ttl_store_keeps_values() -> None:
    clock = FakeClock(0.0)
    store = MemorySessionStore(clock=clock, default_ttl=None)
    await store.put("s", "k", b"v")
    clock.advance(10**9)
    assert await store.expire() == 0
    assert await store.get("s", "k") == b"v"


async def test_ttl_must_not_be_negative() -> None:
    store = MemorySessionStore()
    with pytest.raises(ValueError, match="ttl must be >= 0"):
        await store.put("s", "k", b"v", ttl=-1)
    with pytest.raises(ValueError, match="ttl must be >= 0"):
        await store.put("s", "k", b"v", ttl=float("nan"))
    with pytest.raises(ValueError, match="ttl must be >= 0"):
        MemorySessionStore(default_ttl=-1)


async def test_zero_ttl_is_expired_at_once() -> None:
    """As in the SQLite and Redis stores: a put with ttl=0 replaces the value with nothing."""
    clock = FakeClock()
    store = MemorySessionStore(clock=clock)
    await store.put("s", "k", b"old")
    await store.put("s", "k", b"new", ttl=0)
    assert await store.get("s", "k") is None
    assert await store.keys("s") == []


async def test_closed_backends_refuse_work() -> None:
    async with MemorySessionStore() as store:
        await store.put("s", "k", b"v")
    with pytest.raises(BackendClosed):
        await store.get("s", "k")
    async with MemoryTaskBackend() as tasks:
        await tasks.create(TaskRecord("t", "o"))
    with pytest.raises(BackendClosed):
        await tasks.get("t")


def test_memory_backends_satisfy_the_protocols() -> None:
    assert isinstance(MemorySessionStore(), SessionStateStore)
    assert isinstance(MemoryTaskBackend(), TaskBackend)


async def test_task_expire_counts_and_paging_across_ties() -> None:
    clock = FakeClock(1000.0)
    tasks = MemoryTaskBackend(clock=clock)
    for i, created in enumerate([10.0, 30.0, 20.0, 30.0, 30.0]):
        await tasks.create(TaskRecord(f"t{i}", "o", created_at=created, ttl=1000.0 if i % 2 else None))
    order = []
    cursor = None
    for _ in range(10):
        page = await tasks.list("o", cursor=cursor, limit=2)
        order += [r.task_id for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert order == ["t1", "t3", "t4", "t2", "t0"]
    clock.advance(100.0)  # t1 (30+1000) and t3 (30+1000) now expired at 1100
    assert await tasks.expire() == 2
    assert [r.task_id for r in (await tasks.list("o")).records] == ["t4", "t2", "t0"]


async def test_ttl_change_on_update_moves_the_expiry() -> None:
    clock = FakeClock(0.0)
    tasks = MemoryTaskBackend(clock=clock)
    record = await tasks.create(TaskRecord("t", "o", ttl=10.0))
    import attrs

    await tasks.update(attrs.evolve(record, ttl=1.0, status=TaskStatus.COMPLETED), expected_version=1)
    clock.advance(1.0)
    assert await tasks.expire() == 1
    assert await tasks.get("t") is None


@pytest.mark.parametrize("cursor", ["", "%%%", "bm90IG1zZ3BhY2s", "kqFhAQ=="])
async def test_malformed_cursor_is_a_value_error(cursor: str) -> None:
    tasks = MemoryTaskBackend()
    await tasks.create(TaskRecord("t", "o"))
    with pytest.raises(ValueError, match="malformed task list cursor"):
        await tasks.list("o", cursor=cursor)
