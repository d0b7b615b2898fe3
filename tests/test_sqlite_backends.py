"""The SQLite backends: their contract, durability across reopen and across ``kill -9``.

These tests stand alone (they do not need the conformance kit); ``test_backend_kit_sqlite.py`` runs
the kit's random sequences against the same classes.
"""

from __future__ import annotations

import functools
import math
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcpvisor.backends._behaviours import DEFAULT_VALUE_TTL, SessionStateStore, TaskBackend
from mcpvisor.backends._errors import (
    BackendClosed,
    BackendError,
    InvalidTransition,
    TaskExists,
    TaskNotFound,
    VersionConflict,
)
from mcpvisor.backends._sqlite import SQLiteSessionStore, SQLiteTaskBackend
from mcpvisor.backends._task_record import TaskRecord, TaskStatus

_WRITER = Path(__file__).with_name("_sqlite_killed_writer.py")


class FakeClock:
    """Wall-clock seconds that only move when the test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteSessionStore]:
    async with SQLiteSessionStore(tmp_path / "state.db", clock=clock) as s:
        yield s


@pytest.fixture
async def tasks(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteTaskBackend]:
    async with SQLiteTaskBackend(tmp_path / "state.db", clock=clock) as t:
        yield t


def record(task_id: str, *, owner: str = "alice", created_at: float = 1_000.0, **kw: object) -> TaskRecord:
    return TaskRecord(task_id, owner, created_at=created_at, updated_at=created_at, **kw)  # type: ignore[arg-type]


# --- shape -------------------------------------------------------------------------------------------


def test_classes_satisfy_the_protocols(tmp_path: Path) -> None:
    assert isinstance(SQLiteSessionStore(tmp_path / "a.db"), SessionStateStore)
    assert isinstance(SQLiteTaskBackend(tmp_path / "a.db"), TaskBackend)


async def test_constructor_opens_nothing_until_first_use(tmp_path: Path) -> None:
    path = tmp_path / "lazy.db"
    store = SQLiteSessionStore(path)
    tasks = SQLiteTaskBackend(path)
    assert not path.exists()
    assert await store.get("s", "k") is None
    assert path.exists()
    await store.aclose()
    await tasks.aclose()  # closing a never-used backend is fine


async def test_file_is_in_wal_mode_with_schema_versions(tmp_path: Path) -> None:
    path = tmp_path / "both.db"
    async with SQLiteSessionStore(path) as store, SQLiteTaskBackend(path) as tasks:
        await store.put("s", "k", b"v")
        await tasks.create(record("t"))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = dict(conn.execute("SELECT component, version FROM mcpvisor_schema").fetchall())
        assert versions == {"session_values": 1, "tasks": 1}
    finally:
        conn.close()


async def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE mcpvisor_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO mcpvisor_schema VALUES ('tasks', 99)")
    conn.commit()
    conn.close()
    async with SQLiteTaskBackend(path) as tasks:
        with pytest.raises(BackendError, match="schema version 99"):
            await tasks.get("t")
    async with SQLiteSessionStore(path) as store:  # the other component's tables are fine
        await store.put("s", "k", b"v")
        assert await store.get("s", "k") == b"v"


async def test_use_after_aclose_raises_backend_closed(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "c.db")
    tasks = SQLiteTaskBackend(tmp_path / "c.db")
    await store.put("s", "k", b"v")
    await tasks.create(record("t"))
    await store.aclose()
    await store.aclose()  # idempotent
    await tasks.aclose()
    with pytest.raises(BackendClosed):
        await store.get("s", "k")
    with pytest.raises(BackendClosed):
        await store.put("s", "k", b"v")
    with pytest.raises(BackendClosed):
        await tasks.get("t")


async def test_operations_submitted_before_aclose_complete(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "d.db")
    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(store.put, "s", f"k{i:02}", b"v")
        await trio.testing.wait_all_tasks_blocked()
        await store.aclose()
    async with SQLiteSessionStore(tmp_path / "d.db") as again:
        assert await again.keys("s") == [f"k{i:02}" for i in range(20)]


async def test_open_failure_is_raised_and_retried(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "x.db"
    async with SQLiteSessionStore(path) as store:
        with pytest.raises(sqlite3.OperationalError):
            await store.get("s", "k")
        path.parent.mkdir()
        await store.put("s", "k", b"v")
        assert await store.get("s", "k") == b"v"


# --- session store ----------------------------------------------------------------------------------


async def test_put_get_overwrite_and_isolation_between_sessions(store: SQLiteSessionStore) -> None:
    assert await store.get("s1", "k") is None
    await store.put("s1", "k", b"one")
    await store.put("s2", "k", b"two")
    await store.put("s1", "k", b"uno")
    assert await store.get("s1", "k") == b"uno"
    assert await store.get("s2", "k") == b"two"
    await store.put("s1", "empty", b"")
    assert await store.get("s1", "empty") == b""


async def test_put_accepts_bytes_like_and_rejects_other_values(store: SQLiteSessionStore) -> None:
    await store.put("s", "k", bytearray(b"ba"))  # type: ignore[arg-type]
    assert await store.get("s", "k") == b"ba"
    with pytest.raises(TypeError, match="bytes"):
        await store.put("s", "k", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        await store.put("s", "k", b"v", ttl=-1)
    with pytest.raises(ValueError, match="default_ttl"):
        SQLiteSessionStore(":memory:", default_ttl=-5)


async def test_value_past_its_ttl_is_never_returned(store: SQLiteSessionStore, clock: FakeClock) -> None:
    await store.put("s", "short", b"v", ttl=10)
    await store.put("s", "long", b"v", ttl=100)
    clock.now += 9.999
    assert await store.get("s", "short") == b"v"
    clock.now += 0.001  # exactly at the TTL: expired
    assert await store.get("s", "short") is None
    assert await store.keys("s") == ["long"]
    assert await store.delete("s", "short") is False
    assert await store.get("s", "long") == b"v"


async def test_default_ttl_is_one_day_and_configurable(tmp_path: Path, clock: FakeClock) -> None:
    async with (
        SQLiteSessionStore(tmp_path / "a.db", clock=clock) as day,
        SQLiteSessionStore(tmp_path / "b.db", clock=clock, default_ttl=5) as short,
        SQLiteSessionStore(tmp_path / "c.db", clock=clock, default_ttl=None) as forever,
    ):
        for s in (day, short, forever):
            await s.put("s", "k", b"v")
        clock.now += 5
        assert [await s.get("s", "k") for s in (day, short, forever)] == [b"v", None, b"v"]
        clock.now += DEFAULT_VALUE_TTL
        assert [await s.get("s", "k") for s in (day, short, forever)] == [None, None, b"v"]
        assert [await s.expire() for s in (day, short, forever)] == [1, 1, 0]


async def test_put_refreshes_the_ttl(store: SQLiteSessionStore, clock: FakeClock) -> None:
    await store.put("s", "k", b"v", ttl=10)
    clock.now += 8
    await store.put("s", "k", b"w", ttl=10)
    clock.now += 8
    assert await store.get("s", "k") == b"w"


async def test_keys_are_sorted_by_code_point(store: SQLiteSessionStore) -> None:
    keys = ["b", "a", "Z", "é", "\U0001f600", "a\x00b", "", "ab"]
    for k in keys:
        await store.put("s", k, k.encode())
    assert await store.keys("s") == sorted(keys)
    for k in keys:
        assert await store.get("s", k) == k.encode()
    assert await store.keys("other") == []


async def test_delete_reports_whether_a_live_value_was_there(store: SQLiteSessionStore) -> None:
    await store.put("s", "k", b"v")
    assert await store.delete("s", "k") is True
    assert await store.delete("s", "k") is False
    assert await store.get("s", "k") is None


async def test_drop_session_removes_only_that_session(store: SQLiteSessionStore) -> None:
    for k in "abc":
        await store.put("gone", k, b"v")
    await store.put("kept", "a", b"v")
    await store.drop_session("gone")
    assert await store.keys("gone") == []
    assert await store.keys("kept") == ["a"]


async def test_expire_removes_and_counts_only_expired_values(
    store: SQLiteSessionStore, clock: FakeClock
) -> None:
    await store.put("s", "a", b"v", ttl=1)
    await store.put("t", "b", b"v", ttl=1)
    await store.put("s", "c", b"v", ttl=50)
    assert await store.expire() == 0
    clock.now += 1
    assert await store.expire() == 2
    assert await store.expire() == 0
    assert await store.keys("s") == ["c"]


async def test_values_persist_across_close_and_reopen(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "persist.db"
    async with SQLiteSessionStore(path, clock=clock) as store:
        await store.put("s", "k", b"\x00\xffdata", ttl=100)
        await store.put("s", "gone", b"x")
        await store.delete("s", "gone")
    async with SQLiteSessionStore(path, clock=clock) as store:
        assert await store.get("s", "k") == b"\x00\xffdata"
        assert await store.keys("s") == ["k"]
        clock.now += 100
        assert await store.get("s", "k") is None  # the absolute expiry time was stored


async def test_two_store_objects_on_one_file_see_each_other(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SQLiteSessionStore(path) as a, SQLiteSessionStore(path) as b:
        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon((a if i % 2 else b).put, "s", f"k{i:02}", b"v")
        assert await a.keys("s") == await b.keys("s") == [f"k{i:02}" for i in range(30)]


async def test_concurrent_puts_all_land(store: SQLiteSessionStore) -> None:
    async def writer(n: int) -> None:
        for i in range(10):
            await store.put(f"s{n}", f"k{i}", f"{n}:{i}".encode())

    async with trio.open_nursery() as nursery:
        for n in range(50):
            nursery.start_soon(writer, n)
    for n in range(50):
        assert await store.keys(f"s{n}") == sorted(f"k{i}" for i in range(10))
        assert await store.get(f"s{n}", "k9") == f"{n}:9".encode()


async def test_a_cancelled_put_still_completes_or_not_at_all(store: SQLiteSessionStore) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.put("s", "k", b"v")  # runs to completion, then the cancellation is delivered
        await trio.lowlevel.checkpoint()
    assert scope.cancelled_caught
    assert await store.get("s", "k") == b"v"


_KEYS = st.sampled_from(["a", "b", "é", ""])
_SESSION_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _KEYS, st.binary(max_size=8), st.sampled_from([None, 0, 1, 5])),
        st.tuples(st.just("get"), _KEYS),
        st.tuples(st.just("delete"), _KEYS),
        st.tuples(st.just("keys")),
        st.tuples(st.just("expire")),
        st.tuples(st.just("tick"), st.sampled_from([0.5, 1, 3])),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_SESSION_OPS)
def test_session_store_matches_a_dict_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]]
) -> None:
    path = tmp_path_factory.mktemp("model") / "m.db"
    clock = FakeClock()

    async def run() -> None:
        model: dict[str, tuple[bytes, float]] = {}

        def live() -> dict[str, bytes]:
            return {k: v for k, (v, exp) in model.items() if clock.now < exp}

        async with SQLiteSessionStore(path, clock=clock, default_ttl=2) as store:
            for op in ops:
                if op[0] == "put":
                    _, key, value, ttl = op
                    await store.put("s", key, value, ttl=ttl)
                    model[key] = (value, clock.now + (2 if ttl is None else ttl))
                elif op[0] == "get":
                    assert await store.get("s", op[1]) == live().get(op[1])
                elif op[0] == "delete":
                    was_live = op[1] in live()
                    model.pop(op[1], None)
                    assert await store.delete("s", op[1]) is was_live
                elif op[0] == "keys":
                    assert await store.keys("s") == sorted(live())
                elif op[0] == "expire":
                    dead = [k for k in model if k not in live()]
                    for k in dead:
                        del model[k]
                    assert await store.expire() == len(dead)
                else:
                    clock.now += op[1]
                # invariant after every step: the store shows exactly the model's live values
                assert await store.keys("s") == sorted(live())
                for key in ("a", "b", "é", ""):
                    assert await store.get("s", key) == live().get(key)

    trio.run(run)


# --- task backend -----------------------------------------------------------------------------------


async def test_create_stores_version_one_and_rejects_duplicates(tasks: SQLiteTaskBackend) -> None:
    full = record(
        "t1",
        status=TaskStatus.INPUT_REQUIRED,
        status_message="need input",
        progress=0.5,
        total=2.0,
        result=b"",
        error=b"\x00err",
        input_request=b"ask",
        ttl=60.0,
        poll_interval=1.5,
        version=7,
    )
    stored = await tasks.create(full)
    assert stored == attrs.evolve(full, version=1)
    assert await tasks.get("t1") == stored
    with pytest.raises(TaskExists):
        await tasks.create(record("t1", owner="bob"))
    assert await tasks.get("t1") == stored
    assert await tasks.get("nope") is None


async def test_expired_record_is_invisible_and_its_id_reusable(
    tasks: SQLiteTaskBackend, clock: FakeClock
) -> None:
    await tasks.create(record("t", ttl=10.0))
    clock.now += 9.5
    assert (await tasks.get("t")) is not None
    clock.now += 0.5  # created_at + ttl reached
    assert await tasks.get("t") is None
    assert (await tasks.list("alice")).records == ()
    with pytest.raises(TaskNotFound):
        await tasks.update(record("t", ttl=10.0, status=TaskStatus.COMPLETED), expected_version=1)
    assert await tasks.delete("t") is False
    fresh = await tasks.create(record("t", owner="bob", created_at=clock.now))
    assert await tasks.get("t") == fresh
    assert await tasks.expire() == 0


async def test_update_is_compare_and_set(tasks: SQLiteTaskBackend) -> None:
    v1 = await tasks.create(record("t", ttl=100.0))
    v2 = await tasks.update(
        attrs.evolve(v1, status_message="half", progress=1.0, total=2.0, updated_at=1_001.0, ttl=200.0),
        expected_version=1,
    )
    assert v2.version == 2
    assert v2.status_message == "half"
    assert await tasks.get("t") == v2
    with pytest.raises(VersionConflict) as info:
        await tasks.update(attrs.evolve(v1, status_message="stale"), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert await tasks.get("t") == v2
    v3 = await tasks.update(attrs.evolve(v2, status=TaskStatus.COMPLETED, result=b"ok"), expected_version=2)
    assert v3.version == 3
    assert await tasks.get("t") == v3


async def test_update_of_a_missing_task_is_not_found(tasks: SQLiteTaskBackend) -> None:
    with pytest.raises(TaskNotFound):
        await tasks.update(record("ghost"), expected_version=1)
    created = await tasks.create(record("t"))
    assert await tasks.delete("t") is True
    with pytest.raises(TaskNotFound):
        await tasks.update(created, expected_version=1)


@pytest.mark.parametrize("terminal", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED])
async def test_a_terminal_record_is_never_resurrected(tasks: SQLiteTaskBackend, terminal: TaskStatus) -> None:
    v1 = await tasks.create(record("t"))
    v2 = await tasks.update(attrs.evolve(v1, status=terminal), expected_version=1)
    for status in TaskStatus:
        with pytest.raises(InvalidTransition):
            await tasks.update(attrs.evolve(v2, status=status, result=b"changed"), expected_version=2)
    assert await tasks.get("t") == v2


async def test_owner_and_created_at_are_immutable(tasks: SQLiteTaskBackend) -> None:
    v1 = await tasks.create(record("t"))
    with pytest.raises(InvalidTransition):
        await tasks.update(attrs.evolve(v1, owner="mallory"), expected_version=1)
    with pytest.raises(InvalidTransition):
        await tasks.update(attrs.evolve(v1, created_at=5.0), expected_version=1)
    assert await tasks.get("t") == v1
    assert [r.task_id for r in (await tasks.list("mallory")).records] == []


async def test_input_required_and_working_move_both_ways(tasks: SQLiteTaskBackend) -> None:
    v = await tasks.create(record("t"))
    v = await tasks.update(
        attrs.evolve(v, status=TaskStatus.INPUT_REQUIRED, input_request=b"q"), expected_version=1
    )
    v = await tasks.update(attrs.evolve(v, status=TaskStatus.WORKING, input_request=None), expected_version=2)
    v = await tasks.update(attrs.evolve(v, status=TaskStatus.FAILED, error=b"boom"), expected_version=3)
    assert await tasks.get("t") == v
    assert v.version == 4


async def test_list_pages_newest_first_with_ties_by_task_id(tasks: SQLiteTaskBackend) -> None:
    created = [1_000.0, 1_003.0, 1_001.0, 1_003.0, 1_002.0, 1_003.0, 1_000.0]
    for i, t in enumerate(created):
        await tasks.create(record(f"t{i}", created_at=t))
    await tasks.create(record("other", owner="bob", created_at=1_005.0))
    expected = [r for _, r in sorted((-t, f"t{i}") for i, t in enumerate(created))]
    for limit in (1, 2, 3, 7, 50):
        seen: list[str] = []
        page = await tasks.list("alice", limit=limit)
        for _ in range(10):
            assert len(page.records) <= limit
            seen += [r.task_id for r in page.records]
            if page.next_cursor is None:
                break
            assert len(page.records) == limit
            page = await tasks.list("alice", cursor=page.next_cursor, limit=limit)
        assert seen == expected
    assert [r.task_id for r in (await tasks.list("bob")).records] == ["other"]
    assert await tasks.list("nobody") == await tasks.list("nobody", limit=1)


async def test_a_cursor_survives_deletion_and_insertion(tasks: SQLiteTaskBackend) -> None:
    for i in range(6):
        await tasks.create(record(f"t{i}", created_at=1_000.0 + i))
    page = await tasks.list("alice", limit=2)
    assert [r.task_id for r in page.records] == ["t5", "t4"]
    await tasks.delete("t3")
    await tasks.create(record("new", created_at=2_000.0))  # newer: belongs before the cursor
    assert page.next_cursor is not None
    rest = await tasks.list("alice", cursor=page.next_cursor, limit=10)
    assert [r.task_id for r in rest.records] == ["t2", "t1", "t0"]
    assert rest.next_cursor is None


@pytest.mark.parametrize("cursor", ["", "garbage!", "bm90IGpzb24=", "WzEsMl0=", "WyJ6eiIsInQiXQ==", "é"])
async def test_a_malformed_cursor_is_a_value_error(tasks: SQLiteTaskBackend, cursor: str) -> None:
    await tasks.create(record("t"))
    with pytest.raises(ValueError, match="cursor"):
        await tasks.list("alice", cursor=cursor)


async def test_limit_must_be_positive(tasks: SQLiteTaskBackend) -> None:
    with pytest.raises(ValueError, match="limit"):
        await tasks.list("alice", limit=0)


async def test_delete_and_expire(tasks: SQLiteTaskBackend, clock: FakeClock) -> None:
    await tasks.create(record("a", ttl=5.0))
    await tasks.create(record("b", ttl=50.0))
    await tasks.create(record("c"))
    assert await tasks.delete("c") is True
    assert await tasks.delete("c") is False
    assert await tasks.expire() == 0
    clock.now += 5
    assert await tasks.expire() == 1
    clock.now += 1_000_000
    assert await tasks.expire() == 1
    assert await tasks.get("b") is None


async def test_records_persist_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    async with SQLiteTaskBackend(path, clock=lambda: 0.0) as tasks:
        v1 = await tasks.create(record("t", created_at=math.pi, ttl=1e9, progress=1 / 3))
        v2 = await tasks.update(attrs.evolve(v1, status=TaskStatus.CANCELLED), expected_version=1)
    async with SQLiteTaskBackend(path, clock=lambda: 0.0) as tasks:
        assert await tasks.get("t") == v2
        with pytest.raises(InvalidTransition):
            await tasks.update(attrs.evolve(v2, status=TaskStatus.WORKING), expected_version=2)


async def test_racing_updates_exactly_one_wins(tasks: SQLiteTaskBackend) -> None:
    v1 = await tasks.create(record("t"))
    outcomes: list[str] = []

    async def attempt(n: int) -> None:
        try:
            await tasks.update(attrs.evolve(v1, status_message=f"by {n}"), expected_version=1)
            outcomes.append(f"by {n}")
        except VersionConflict:
            outcomes.append("conflict")

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(attempt, n)
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1
    stored = await tasks.get("t")
    assert stored is not None
    assert (stored.version, stored.status_message) == (2, winners[0])


async def test_session_store_and_task_backend_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SQLiteSessionStore(path) as store, SQLiteTaskBackend(path) as tasks:
        await store.put("s", "t", b"value")
        await tasks.create(record("t"))
        assert await store.get("s", "t") == b"value"
        assert await tasks.get("t") is not None
        await store.drop_session("s")
        assert await tasks.get("t") is not None


# --- kill -9 ----------------------------------------------------------------------------------------


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    """A writer process is SIGKILLed mid-run; every write it acknowledged must be in the file."""
    path = tmp_path / "killed.db"
    process = await trio.lowlevel.open_process(
        [sys.executable, str(_WRITER), str(path)], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    data = b""
    try:
        with trio.fail_after(60):
            # Both kinds must be well under way: the value and task writers run at different speeds.
            while data.count(b"value ") < 300 or data.count(b"task ") < 300:
                chunk = await process.stdout.receive_some()
                assert chunk, "the writer exited before it was killed"
                data += chunk
    finally:
        process.send_signal(signal.SIGKILL)
        with trio.fail_after(30):
            await process.wait()
    with trio.fail_after(30):  # lines already in the pipe were acknowledged before the kill too
        while chunk := await process.stdout.receive_some():
            data += chunk
    await process.stdout.aclose()
    assert process.returncode == -signal.SIGKILL, "the writer must die by SIGKILL, mid-run"

    acknowledged = [line.split() for line in data.split(b"\n")[:-1]]  # the last piece may be partial
    sys.path.insert(0, str(_WRITER.parent))
    from _sqlite_killed_writer import value_for

    async with SQLiteSessionStore(path) as store, SQLiteTaskBackend(path) as tasks:
        values = [name.decode() for kind, name in acknowledged if kind == b"value"]
        task_ids = [name.decode() for kind, name in acknowledged if kind == b"task"]
        assert len(values) >= 200
        assert len(task_ids) >= 200
        for key in values:
            assert await store.get("session", key) == value_for(key)
        for task_id in task_ids:
            stored = await tasks.get(task_id)
            assert stored is not None
            assert stored.result == value_for(task_id)


async def test_racing_updates_from_two_connections_exactly_one_wins(tmp_path: Path) -> None:
    """Two backend objects are two connections (as two processes would be): SQLite's file lock and
    the conditional UPDATE still let exactly one compare-and-set through per version."""
    path = tmp_path / "race.db"
    async with SQLiteTaskBackend(path) as a, SQLiteTaskBackend(path) as b:
        await a.create(record("t"))
        wins = 0

        async def attempt(
            backend: SQLiteTaskBackend, who: str, seen: TaskRecord, results: list[bool]
        ) -> None:
            try:
                change = attrs.evolve(seen, status_message=who)
                await backend.update(change, expected_version=seen.version)
                results.append(True)
            except VersionConflict:
                results.append(False)

        for round_ in range(1, 11):
            current = await a.get("t")
            assert current is not None
            results: list[bool] = []
            async with trio.open_nursery() as nursery:
                for n in range(4):
                    nursery.start_soon(attempt, a if n % 2 else b, f"w{n}", current, results)
            assert sorted(results) == [False, False, False, True]
            wins += 1
            final = await b.get("t")
            assert final is not None
            assert final.version == round_ + 1
        assert wins == 10


async def test_a_forgotten_backend_stops_its_thread(tmp_path: Path) -> None:
    import gc
    import threading

    path = tmp_path / "forgotten.db"

    def mine() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == f"mcpvisor-sqlite {path}" and t.is_alive()]

    store = SQLiteSessionStore(path)
    assert mine() == []
    await store.put("s", "k", b"v")
    assert len(mine()) == 1
    del store
    gc.collect()
    with trio.fail_after(10):
        while mine():  # noqa: ASYNC110 (a thread's exit has no event to wait on)
            await trio.sleep(0.01)


_TASK_IDS = st.sampled_from(["t1", "t2", "t3"])
_OWNERS = st.sampled_from(["alice", "bob"])
_TASK_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"), _TASK_IDS, st.sampled_from(["alice", "bob"]), st.sampled_from([None, 1.0, 4.0])
        ),
        st.tuples(st.just("update"), _TASK_IDS, st.sampled_from(list(TaskStatus)), st.integers(0, 3)),
        st.tuples(st.just("delete"), _TASK_IDS),
        st.tuples(st.just("expire")),
        st.tuples(st.just("tick"), st.sampled_from([0.5, 1.0, 2.0])),
    ),
    max_size=20,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_TASK_OPS, limit=st.integers(1, 3))
def test_task_backend_matches_a_dict_model(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]], limit: int
) -> None:
    path = tmp_path_factory.mktemp("taskmodel") / "m.db"
    clock = FakeClock()

    async def run() -> None:
        model: dict[str, TaskRecord] = {}

        def live() -> dict[str, TaskRecord]:
            return {k: r for k, r in model.items() if r.expires_at is None or clock.now < r.expires_at}

        async with SQLiteTaskBackend(path, clock=clock) as tasks:
            for step, op in enumerate(ops):
                if op[0] == "create":
                    _, task_id, owner, ttl = op
                    new = record(
                        task_id, owner=owner, created_at=clock.now, ttl=ttl, status_message=str(step)
                    )
                    if task_id in live():
                        with pytest.raises(TaskExists):
                            await tasks.create(new)
                    else:
                        model[task_id] = await tasks.create(new)
                        assert model[task_id].version == 1
                elif op[0] == "update":
                    _, task_id, status, version = op
                    current = live().get(task_id)
                    base = current or record(task_id)
                    change = attrs.evolve(base, status=status, status_message=str(step))
                    if current is None:
                        with pytest.raises(TaskNotFound):
                            await tasks.update(change, expected_version=version)
                        model.pop(task_id, None)  # a dead record found by update is removed
                    elif version != current.version:
                        with pytest.raises(VersionConflict):
                            await tasks.update(change, expected_version=version)
                    elif current.status.is_terminal:
                        with pytest.raises(InvalidTransition):
                            await tasks.update(change, expected_version=version)
                    else:
                        model[task_id] = await tasks.update(change, expected_version=version)
                        assert model[task_id].version == version + 1
                elif op[0] == "delete":
                    was_live = op[1] in live()
                    model.pop(op[1], None)
                    assert await tasks.delete(op[1]) is was_live
                elif op[0] == "expire":
                    dead = [k for k in model if k not in live()]
                    for k in dead:
                        del model[k]
                    assert await tasks.expire() == len(dead)
                else:
                    clock.now += op[1]
                # invariants after every step: get and paged list show exactly the live model
                for task_id in ("t1", "t2", "t3"):
                    assert await tasks.get(task_id) == live().get(task_id)
                for owner in ("alice", "bob"):
                    expected = sorted(
                        (r for r in live().values() if r.owner == owner),
                        key=lambda r: (-r.created_at, r.task_id),
                    )
                    listed: list[TaskRecord] = []
                    page = await tasks.list(owner, limit=limit)
                    for _ in range(5):
                        listed += page.records
                        if page.next_cursor is None:
                            break
                        page = await tasks.list(owner, cursor=page.next_cursor, limit=limit)
                    assert listed == expected

    trio.run(run)


async def test_concurrent_acloses_both_wait_for_the_close(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "twice.db")
    await store.put("s", "k", b"v")
    finished: list[int] = []

    async def close(n: int) -> None:
        await store.aclose()
        finished.append(n)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(close, 1)
        nursery.start_soon(close, 2)
    assert sorted(finished) == [1, 2]
    conn = sqlite3.connect(tmp_path / "twice.db")
    try:  # the last connection closed cleanly: SQLite checkpointed and removed the WAL
        assert conn.execute("SELECT value FROM mcpvisor_session_values").fetchall() == [(b"v",)]
    finally:
        conn.close()
    assert not (tmp_path / "twice.db-wal").exists()


async def test_ids_with_nul_and_versions_beyond_64_bits(tasks: SQLiteTaskBackend) -> None:
    stored = await tasks.create(record("a\x00b", owner="o\x00", created_at=math.inf))
    assert await tasks.get("a\x00b") == stored
    assert await tasks.get("a") is None
    assert (await tasks.list("o\x00")).records == (stored,)
    for version in (2**70, -(2**70)):
        with pytest.raises(VersionConflict):
            await tasks.update(stored, expected_version=version)


async def test_update_that_finds_a_dead_record_removes_it(tasks: SQLiteTaskBackend, clock: FakeClock) -> None:
    """Like the memory backend: TaskNotFound for an expired record also removes it, so a later
    expire() does not count it (the conformance kit's model relies on that)."""
    stored = await tasks.create(record("t", created_at=clock.now - 0.5, ttl=2.0))
    clock.now += 1.5
    with pytest.raises(TaskNotFound):
        await tasks.update(stored, expected_version=1)
    assert await tasks.expire() == 0


def test_one_backend_object_serves_successive_trio_runs(tmp_path: Path) -> None:
    """Each operation carries its own run's token, so a backend built outside trio (at import time,
    say) works in one ``trio.run`` after another."""
    store = SQLiteSessionStore(tmp_path / "runs.db")
    trio.run(store.put, "s", "k", b"first run")
    assert trio.run(store.get, "s", "k") == b"first run"
    trio.run(store.aclose)


# --- batches: concurrent operations share one transaction -----------------------------------------


async def _hold_the_worker(db: Any, gate: threading.Event) -> None:
    """Run a job that blocks the worker thread until ``gate`` is set; returns once it is running."""
    entered = threading.Event()

    def block(_conn: sqlite3.Connection) -> None:
        entered.set()
        gate.wait(10)

    async def hold() -> None:
        await db.run(block)

    trio.lowlevel.spawn_system_task(hold)
    assert await trio.to_thread.run_sync(entered.wait, 10)


async def test_a_failing_operation_in_a_batch_fails_alone(tmp_path: Path) -> None:
    """Operations queued together run in one transaction; one that raises is rolled back by itself."""
    path = tmp_path / "batch.db"
    outcomes: dict[str, Any] = {}
    async with SQLiteTaskBackend(path) as tasks, SQLiteSessionStore(path) as store:
        await tasks.create(record("taken"))
        gate = threading.Event()
        await _hold_the_worker(tasks._db, gate)

        def write_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO mcpvisor_tasks (task_id, owner, status, created_at, updated_at, version)"
                " VALUES ('half', 'o', 'working', 0, 0, 1)"
            )
            raise RuntimeError("after a write")

        async def one(name: str, fn: Any) -> None:
            try:
                outcomes[name] = await fn()
            except Exception as exc:
                outcomes[name] = exc

        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(one, f"t{i}", functools.partial(tasks.create, record(f"t{i}")))
            nursery.start_soon(one, "taken", functools.partial(tasks.create, record("taken")))
            nursery.start_soon(one, "half", functools.partial(tasks._db.run, write_then_fail))
            await trio.testing.wait_all_tasks_blocked()  # all seven are queued behind the held worker
            gate.set()
        await store.put("s", "after", b"v")  # the worker is free again
    assert isinstance(outcomes["taken"], TaskExists)
    assert isinstance(outcomes["half"], RuntimeError)
    assert [outcomes[f"t{i}"].version for i in range(5)] == [1] * 5
    async with SQLiteTaskBackend(path) as again:
        assert [r.task_id for r in (await again.list("alice")).records] == [
            "t0",
            "t1",
            "t2",
            "t3",
            "t4",
            "taken",
        ]
        assert await again.get("half") is None  # its write was rolled back with it


class _CommitFails(sqlite3.Connection):
    """A connection whose COMMIT fails while ``failing`` is set, like a full disk would."""

    failing = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and _CommitFails.failing:
            raise sqlite3.OperationalError("database or disk is full (simulated)")
        return super().execute(sql, *args)


async def test_when_a_batch_cannot_commit_no_operation_of_it_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No acknowledged write is lost: if the batch's COMMIT fails, every caller gets the error."""
    monkeypatch.setattr(sqlite3, "connect", functools.partial(sqlite3.connect, factory=_CommitFails))
    monkeypatch.setattr(_CommitFails, "failing", False)
    path = tmp_path / "full.db"
    outcomes: list[Any] = []
    async with SQLiteSessionStore(path) as store:
        await store.put("s", "before", b"v")
        gate = threading.Event()
        await _hold_the_worker(store._db, gate)

        async def put(key: str) -> None:
            try:
                outcomes.append(await store.put("s", key, b"v"))
            except Exception as exc:
                outcomes.append(exc)

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(put, f"k{i}")
            await trio.testing.wait_all_tasks_blocked()
            _CommitFails.failing = True
            gate.set()
        _CommitFails.failing = False
        assert len(outcomes) == 4
        assert all(isinstance(o, sqlite3.OperationalError) and "disk is full" in str(o) for o in outcomes)
        assert len({id(o) for o in outcomes}) == 4  # each caller has its own exception object
        assert await store.keys("s") == ["before"]
        await store.put("s", "later", b"v")  # the connection is usable again
        assert await store.keys("s") == ["before", "later"]
