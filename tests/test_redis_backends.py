"""RedisSessionStore and RedisTaskBackend against a private redis-server (see conftest.py).

The scenarios follow the Protocol docstrings in ``mcpvisor.backends._behaviours``; TTLs are real
(Redis expires server-side), short, and every sleep is bounded. Each test uses its own key prefix.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import attrs
import pytest
import trio
from glide import GlideClient, GlideClientConfiguration, NodeAddress
from mcpvisor.backends._errors import (
    BackendClosed,
    BackendError,
    InvalidTransition,
    TaskExists,
    TaskNotFound,
    UnsupportedBackendURL,
    VersionConflict,
)
from mcpvisor.backends._redis import RedisSessionStore, RedisTaskBackend
from mcpvisor.backends._redis_connection import RedisAddress
from mcpvisor.backends._task_record import TaskRecord, TaskStatus

# Long enough to outlast a slow round trip on a loaded machine, short enough to keep the suite fast.
TTL = 0.4
SETTLE = TTL + 0.25


@pytest.fixture
async def store(redis_server: str, redis_prefix: str) -> AsyncIterator[RedisSessionStore]:
    async with RedisSessionStore(redis_server, prefix=redis_prefix) as s:
        await s.get("warm", "up")  # open the connection now, not inside a timed step
        yield s


@pytest.fixture
async def tasks(redis_server: str, redis_prefix: str) -> AsyncIterator[RedisTaskBackend]:
    async with RedisTaskBackend(redis_server, prefix=redis_prefix) as b:
        await b.get("warm-up")
        yield b


@pytest.fixture
async def raw(redis_server: str) -> AsyncIterator[GlideClient]:
    """A plain client, to look at what the backends left on the server."""
    address = RedisAddress.parse(redis_server)
    client = await GlideClient.create(GlideClientConfiguration([NodeAddress(address.host, address.port)]))
    yield client
    await client.close()


def record(task_id: str, owner: str = "alice", **changes: object) -> TaskRecord:
    base = TaskRecord(task_id=task_id, owner=owner, created_at=time.time(), updated_at=time.time())
    return attrs.evolve(base, **changes)


# --- RedisSessionStore ---------------------------------------------------------------------------


async def test_put_get_overwrite_delete(store: RedisSessionStore) -> None:
    assert await store.get("s1", "k") is None
    await store.put("s1", "k", b"one")
    assert await store.get("s1", "k") == b"one"
    await store.put("s1", "k", bytearray(b"two"))
    assert await store.get("s1", "k") == b"two"
    assert await store.delete("s1", "k") is True
    assert await store.delete("s1", "k") is False
    assert await store.get("s1", "k") is None


async def test_keys_sorted_and_names_never_collide(store: RedisSessionStore) -> None:
    # "a:b"/"c" and "a"/"b:c" would share a key in a naive "session:key" layout.
    await store.put("a:b", "c", b"1")
    await store.put("a", "b:c", b"2")
    for key in ["zeta", "Alpha", "é", "beta"]:
        await store.put("s", key, key.encode())
    assert await store.keys("a:b") == ["c"]
    assert await store.keys("a") == ["b:c"]
    assert await store.get("a:b", "c") == b"1"
    assert await store.get("a", "b:c") == b"2"
    assert await store.keys("s") == sorted(["zeta", "Alpha", "é", "beta"])
    assert await store.keys("nobody") == []


async def test_drop_session_leaves_other_sessions(store: RedisSessionStore) -> None:
    for key in ["x", "y", "z"]:
        await store.put("doomed", key, b"v")
    await store.put("kept", "x", b"v")
    await store.drop_session("doomed")
    assert await store.keys("doomed") == []
    assert await store.get("doomed", "x") is None
    assert await store.get("kept", "x") == b"v"
    await store.put("doomed", "again", b"v")  # a dropped session can be used again
    assert await store.keys("doomed") == ["again"]


async def test_value_expires_on_the_server(store: RedisSessionStore) -> None:
    await store.put("s", "short", b"v", ttl=TTL)
    await store.put("s", "long", b"v", ttl=60)
    assert await store.get("s", "short") == b"v"
    assert await store.keys("s") == ["long", "short"]
    await trio.sleep(SETTLE)
    assert await store.get("s", "short") is None
    assert await store.keys("s") == ["long"]
    assert await store.delete("s", "short") is False  # expired: not "there"


async def test_expire_counts_the_values_that_expired(store: RedisSessionStore, raw: GlideClient) -> None:
    for session in ["s1", "s2"]:
        await store.put(session, "gone", b"v", ttl=TTL)
        await store.put(session, "stays", b"v", ttl=60)
    await store.put("s3", "overwritten", b"v", ttl=TTL)
    await store.put("s3", "overwritten", b"v", ttl=60)  # a later put with a longer TTL keeps it
    await store.put("s3", "deleted", b"v", ttl=TTL)
    await store.delete("s3", "deleted")
    await trio.sleep(SETTLE)
    assert await store.expire() == 2
    assert await store.expire() == 0
    assert await store.keys("s1") == ["stays"]
    assert await store.keys("s3") == ["overwritten"]
    # The index entries are really gone, not just filtered.
    prefix = store._p
    assert await raw.zcard(f"{prefix}:si:s1") == 1


async def test_zero_ttl_is_never_visible_and_counted_by_expire(store: RedisSessionStore) -> None:
    await store.put("s", "k", b"old")
    await store.put("s", "k", b"new", ttl=0)
    assert await store.get("s", "k") is None
    assert await store.keys("s") == []
    assert await store.expire() == 1


async def test_default_ttl_is_configurable(redis_server: str, redis_prefix: str, raw: GlideClient) -> None:
    async with (
        RedisSessionStore(redis_server, prefix=redis_prefix + "a", default_ttl=TTL) as short,
        RedisSessionStore(redis_server, prefix=redis_prefix + "b", default_ttl=None) as forever,
        RedisSessionStore(redis_server, prefix=redis_prefix + "c") as default,
    ):
        for s in (short, forever, default):
            await s.put("s", "k", b"v")
        assert await raw.pttl("{" + redis_prefix + "b}:s:1:s:k") == -1  # no expiry at all
        day_ms = await raw.pttl("{" + redis_prefix + "c}:s:1:s:k")
        assert 86_000_000 < day_ms <= 86_400_000
        await trio.sleep(SETTLE)
        assert await short.get("s", "k") is None
        assert await forever.get("s", "k") == b"v"
        assert await default.get("s", "k") == b"v"


async def test_bad_arguments(store: RedisSessionStore, redis_server: str) -> None:
    with pytest.raises(TypeError, match="bytes"):
        await store.put("s", "k", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        await store.put("s", "k", b"v", ttl=-1)
    with pytest.raises(ValueError, match="default_ttl"):
        RedisSessionStore(redis_server, default_ttl=float("nan"))
    with pytest.raises(ValueError, match="prefix"):
        RedisSessionStore(redis_server, prefix="a{b}")
    with pytest.raises(UnsupportedBackendURL):
        RedisSessionStore("http://127.0.0.1:1/0")
    with pytest.raises(UnsupportedBackendURL):
        RedisTaskBackend("redis://127.0.0.1:6379/zero")


def test_url_parsing() -> None:
    address = RedisAddress.parse("rediss://me:p%40ss@example.org:7000/3")
    assert address == RedisAddress("example.org", 7000, 3, True, "me", "p@ss")
    assert "p@ss" not in address.redacted()
    assert RedisAddress.parse("redis://localhost") == RedisAddress("localhost", 6379, 0, False, None, None)


async def test_prefixes_isolate_stores_on_one_server(redis_server: str, redis_prefix: str) -> None:
    async with (
        RedisSessionStore(redis_server, prefix=redis_prefix + "-1") as one,
        RedisSessionStore(redis_server, prefix=redis_prefix + "-2") as two,
    ):
        await one.put("s", "k", b"one", ttl=TTL)
        await two.put("s", "k", b"two", ttl=TTL)
        await two.put("s", "only-two", b"v")
        assert await one.get("s", "k") == b"one"
        assert await two.get("s", "k") == b"two"
        assert await one.keys("s") == ["k"]
        await one.drop_session("s")
        assert await two.keys("s") == ["k", "only-two"]
        await trio.sleep(SETTLE)
        assert await one.expire() == 0  # its expiring value was dropped
        assert await two.expire() == 1


async def test_constructor_is_lazy_and_aclose_is_final(redis_server: str, redis_prefix: str) -> None:
    unused = RedisSessionStore("redis://127.0.0.1:1/0")  # nothing listens there; never connected
    await unused.aclose()
    with pytest.raises(BackendClosed):
        await unused.get("s", "k")
    store = RedisSessionStore(redis_server, prefix=redis_prefix)
    await store.put("s", "k", b"v")
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(BackendClosed):
        await store.put("s", "k", b"v")
    with pytest.raises(BackendClosed):
        await store.get("s", "k")


async def test_unreachable_server_is_a_backend_error() -> None:
    async with RedisSessionStore("redis://127.0.0.1:1/0", request_timeout=0.5) as store:
        with pytest.raises(BackendError, match="cannot connect"):
            await store.get("s", "k")


# --- RedisTaskBackend -----------------------------------------------------------------------------


async def test_create_get_round_trips_every_field(tasks: RedisTaskBackend) -> None:
    full = record(
        "t-full",
        owner="ünïcode owner",
        status=TaskStatus.INPUT_REQUIRED,
        status_message="waiting",
        progress=0.5,
        total=2.0,
        result=b"\x00result",
        error=b"",
        input_request=b"\xffask",
        ttl=3600.0,
        poll_interval=1.5,
        version=42,
    )
    stored = await tasks.create(full)
    assert stored == attrs.evolve(full, version=1)
    assert await tasks.get("t-full") == stored
    minimal = await tasks.create(record("t-min"))
    assert await tasks.get("t-min") == minimal
    assert await tasks.get("never") is None


async def test_create_twice_is_task_exists(tasks: RedisTaskBackend) -> None:
    await tasks.create(record("t"))
    with pytest.raises(TaskExists):
        await tasks.create(record("t", owner="bob"))
    assert (await tasks.get("t")) is not None
    assert (await tasks.list("bob")).records == ()


async def test_update_is_compare_and_set(tasks: RedisTaskBackend) -> None:
    created = await tasks.create(record("t"))
    progressed = attrs.evolve(created, progress=1.0, status_message="halfway")
    v2 = await tasks.update(progressed, expected_version=1)
    assert v2.version == 2
    assert await tasks.get("t") == v2
    with pytest.raises(VersionConflict) as info:
        await tasks.update(attrs.evolve(created, progress=9.0), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert await tasks.get("t") == v2
    with pytest.raises(TaskNotFound):
        await tasks.update(record("missing"), expected_version=1)


async def test_terminal_record_is_never_resurrected(tasks: RedisTaskBackend) -> None:
    created = await tasks.create(record("t"))
    done = await tasks.update(
        attrs.evolve(created, status=TaskStatus.COMPLETED, result=b"r"), expected_version=1
    )
    for status in TaskStatus:
        with pytest.raises(InvalidTransition, match="terminal"):
            await tasks.update(attrs.evolve(done, status=status), expected_version=2)
    assert await tasks.get("t") == done
    # The version is checked first: a stale writer learns it is stale, not that the move is illegal.
    with pytest.raises(VersionConflict):
        await tasks.update(attrs.evolve(done, status=TaskStatus.WORKING), expected_version=1)


async def test_owner_and_created_at_are_immutable(tasks: RedisTaskBackend) -> None:
    created = await tasks.create(record("t"))
    for change in ({"owner": "mallory"}, {"created_at": created.created_at + 1}):
        with pytest.raises(InvalidTransition, match="cannot change"):
            await tasks.update(attrs.evolve(created, **change), expected_version=1)  # type: ignore[arg-type]
    assert await tasks.get("t") == created


async def test_cas_race_has_exactly_one_winner(redis_server: str, redis_prefix: str) -> None:
    # Two "nodes" (separate backend objects, separate connections) and 40 concurrent updaters.
    async with (
        RedisTaskBackend(redis_server, prefix=redis_prefix) as node_a,
        RedisTaskBackend(redis_server, prefix=redis_prefix) as node_b,
    ):
        created = await node_a.create(record("t"))
        await node_b.get("t")
        winners: list[str] = []
        conflicts: list[int] = []

        async def updater(node: RedisTaskBackend, n: int) -> None:
            try:
                await node.update(attrs.evolve(created, status_message=f"u{n}"), expected_version=1)
            except VersionConflict as exc:
                conflicts.append(exc.actual)
            else:
                winners.append(f"u{n}")

        async with trio.open_nursery() as nursery:
            for n in range(40):
                nursery.start_soon(updater, node_a if n % 2 else node_b, n)
        assert len(winners) == 1
        assert conflicts == [2] * 39
        final = await node_a.get("t")
        assert final is not None
        assert (final.version, final.status_message) == (2, winners[0])


async def test_list_pages_newest_first_with_ties(tasks: RedisTaskBackend) -> None:
    base = time.time()
    expected = []
    for i in range(23):
        # Groups of three share a created_at, so the task_id tie-break matters.
        rec = await tasks.create(record(f"t{i:02d}", created_at=base + i // 3))
        expected.append(rec)
    await tasks.create(record("other", owner="bob"))
    expected.sort(key=lambda r: (-r.created_at, r.task_id))
    seen: list[TaskRecord] = []
    cursor: str | None = None
    for _ in range(10):
        page = await tasks.list("alice", cursor=cursor, limit=5)
        seen.extend(page.records)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    exact = await tasks.list("alice", limit=23)
    assert exact.next_cursor is None
    assert list(exact.records) == expected
    assert [r.task_id for r in (await tasks.list("bob")).records] == ["other"]
    assert (await tasks.list("nobody")) == type(exact)((), None)


async def test_list_cursor_survives_deletes_and_inserts(tasks: RedisTaskBackend) -> None:
    base = time.time()
    for i in range(6):
        await tasks.create(record(f"t{i}", created_at=base + i))
    first = await tasks.list("alice", limit=2)
    assert [r.task_id for r in first.records] == ["t5", "t4"]
    await tasks.delete("t4")  # the cursor's own record
    await tasks.delete("t3")
    await tasks.create(record("newer", created_at=base + 100))  # lands before the cursor
    assert first.next_cursor is not None
    rest = await tasks.list("alice", cursor=first.next_cursor, limit=10)
    assert [r.task_id for r in rest.records] == ["t2", "t1", "t0"]
    assert rest.next_cursor is None


async def test_list_rejects_bad_cursor_and_limit(tasks: RedisTaskBackend) -> None:
    for bad in ["garbage", "r1.!!!", "r1.", "r1.AAAA"]:
        with pytest.raises(ValueError, match="cursor"):
            await tasks.list("alice", cursor=bad)
    with pytest.raises(ValueError, match="limit"):
        await tasks.list("alice", limit=0)


async def test_delete(tasks: RedisTaskBackend) -> None:
    await tasks.create(record("t"))
    assert await tasks.delete("t") is True
    assert await tasks.delete("t") is False
    assert await tasks.get("t") is None
    assert (await tasks.list("alice")).records == ()
    await tasks.create(record("t", owner="bob"))  # the id is free again
    assert [r.owner for r in (await tasks.list("bob")).records] == ["bob"]


async def test_record_expires_on_the_server(tasks: RedisTaskBackend, raw: GlideClient) -> None:
    short = await tasks.create(record("short", ttl=TTL))
    await tasks.create(record("long", ttl=3600.0))
    await tasks.create(record("forever"))
    assert await tasks.get("short") == short
    await trio.sleep(SETTLE)
    assert await tasks.get("short") is None
    assert sorted(r.task_id for r in (await tasks.list("alice")).records) == ["forever", "long"]
    with pytest.raises(TaskNotFound):
        await tasks.update(short, expected_version=1)
    assert await tasks.expire() == 1
    assert await tasks.expire() == 0
    prefix = tasks._p
    assert await raw.zcard(f"{prefix}:to:alice") == 2  # the dead entry left the owner's index
    # The id can be used again, by another owner, without the old index entry resurfacing.
    await tasks.create(record("short", owner="bob"))
    assert sorted(r.task_id for r in (await tasks.list("alice")).records) == ["forever", "long"]


async def test_delete_and_recreate_of_an_expired_record_are_not_counted(tasks: RedisTaskBackend) -> None:
    await tasks.create(record("a", ttl=TTL))
    await tasks.create(record("b", ttl=TTL))
    await tasks.create(record("c", ttl=TTL))
    await trio.sleep(SETTLE)
    assert await tasks.delete("a") is False  # expired: not "there", but its leftovers are cleaned
    await tasks.create(record("b"))  # replaces the expired b
    assert await tasks.expire() == 1  # only c
    assert [r.task_id for r in (await tasks.list("alice")).records] == ["b"]


async def test_ttl_counts_from_created_at(tasks: RedisTaskBackend) -> None:
    # Created long ago with a ttl already past: never visible, and expire() removes it.
    await tasks.create(record("old", created_at=time.time() - 100, ttl=10.0))
    assert await tasks.get("old") is None
    assert (await tasks.list("alice")).records == ()
    assert await tasks.expire() == 1


async def test_update_can_change_the_ttl(tasks: RedisTaskBackend) -> None:
    created = await tasks.create(record("t", ttl=TTL))
    kept = await tasks.update(attrs.evolve(created, ttl=None), expected_version=1)
    await trio.sleep(SETTLE)
    assert await tasks.get("t") == kept
    assert await tasks.expire() == 0
    await tasks.update(attrs.evolve(kept, ttl=TTL), expected_version=2)
    await trio.sleep(0.05)
    assert await tasks.get("t") is None  # created long enough ago that the new ttl is past
    assert await tasks.expire() == 1


async def test_task_prefixes_isolate(redis_server: str, redis_prefix: str) -> None:
    async with (
        RedisTaskBackend(redis_server, prefix=redis_prefix + "-1") as one,
        RedisTaskBackend(redis_server, prefix=redis_prefix + "-2") as two,
    ):
        await one.create(record("t"))
        await two.create(record("t", status_message="two"))
        got = await two.get("t")
        assert got is not None
        assert got.status_message == "two"
        assert await one.delete("t") is True
        assert await two.get("t") is not None
        assert len((await two.list("alice")).records) == 1


async def test_task_backend_closed(tasks: RedisTaskBackend) -> None:
    await tasks.aclose()
    with pytest.raises(BackendClosed):
        await tasks.get("t")
    with pytest.raises(BackendClosed):
        await tasks.create(record("t"))
