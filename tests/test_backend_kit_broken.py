"""The kit can fail: each deliberately broken backend below must not pass it at the kit's defaults.

Every class is the memory backend with one classic bug. The kit runs with its own default number of
examples and steps (only derandomized, and without the shrink phase, which would just cost time), so
this proves the targeted rules find these bugs in an ordinary CI run, not only in a long soak. A second
test repeats the hunt under several fixed seeds, so a pass here is not the luck of one seed.
"""

from __future__ import annotations

import bisect
import re
import unittest
from collections.abc import Callable

import attrs
import pytest
from hypothesis import Phase, seed, settings
from mcpvisor.backends import MemorySessionStore, MemoryTaskBackend, TaskNotFound, TaskPage, TaskRecord
from mcpvisor.backends._memory import decode_cursor, encode_cursor
from mcpvisor.backends.testing import default_settings, session_store_conformance, task_backend_conformance

#: The kit's defaults, made deterministic.
HUNT = settings(default_settings(), database=None, derandomize=True, phases=[Phase.generate])
SEEDS = (1, 2, 3)


# --- task backends -------------------------------------------------------------------------------


class Resurrecting(MemoryTaskBackend):
    """Lets a terminal record go back to working (skips the transition rule)."""

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        stored = await self.get(record.task_id)
        if stored is None:
            raise TaskNotFound(record.task_id)
        if stored.status.is_terminal:
            new = attrs.evolve(record, version=stored.version + 1)
            self._records[record.task_id] = new
            return new
        return await super().update(record, expected_version=expected_version)


class IgnoresCAS(MemoryTaskBackend):
    """Overwrites whatever version is stored: two nodes would silently lose each other's updates."""

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        stored = await self.get(record.task_id)
        actual = expected_version if stored is None else stored.version
        return await super().update(record, expected_version=actual)


class WrongOrder(MemoryTaskBackend):
    """Pages oldest first."""

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50) -> TaskPage:
        page = await super().list(owner, cursor=cursor, limit=1000)
        return TaskPage(tuple(reversed(page.records))[:limit], None)


class LateTaskExpiry(MemoryTaskBackend):
    """Still returns a record at exactly its expiry instant (``now > expires_at`` instead of ``>=``)."""

    def _live(self, task_id: str, now: float) -> TaskRecord | None:
        record = self._records.get(task_id)
        if record is not None and record.expires_at == now:
            return record
        return super()._live(task_id, now)


class _SortedPaging(MemoryTaskBackend):
    """Pages over a freshly sorted list; subclasses get the order or the cursor wrong."""

    def _sorted(self, records: list[TaskRecord]) -> list[TaskRecord]:
        return sorted(records, key=lambda r: (-r.created_at, r.task_id))

    def _start(self, ordered: list[TaskRecord], cursor: str) -> int:
        created_at, task_id = decode_cursor(cursor)
        keys = [(-r.created_at, r.task_id) for r in ordered]
        return bisect.bisect_right(keys, (-created_at, task_id))

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50) -> TaskPage:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        everything = (await super().list(owner, limit=1_000_000)).records
        ordered = self._sorted(list(everything))
        start = 0 if cursor is None else self._start(ordered, cursor)
        page = ordered[start : start + limit]
        if start + limit < len(ordered):
            return TaskPage(tuple(page), encode_cursor(page[-1].created_at, page[-1].task_id))
        return TaskPage(tuple(page))


class TieBreakReversed(_SortedPaging):
    """Sorts by ``(created_at, task_id)`` descending: equal timestamps come out in the wrong order."""

    def _sorted(self, records: list[TaskRecord]) -> list[TaskRecord]:
        return sorted(records, key=lambda r: (r.created_at, r.task_id), reverse=True)

    def _start(self, ordered: list[TaskRecord], cursor: str) -> int:
        created_at, task_id = decode_cursor(cursor)
        return next(
            (i for i, r in enumerate(ordered) if (r.created_at, r.task_id) < (created_at, task_id)),
            len(ordered),
        )


class CursorSkipsTies(_SortedPaging):
    """The next page starts strictly older than the cursor's timestamp: ties across a page are lost."""

    def _start(self, ordered: list[TaskRecord], cursor: str) -> int:
        created_at, _ = decode_cursor(cursor)
        return next((i for i, r in enumerate(ordered) if r.created_at < created_at), len(ordered))


class CursorRepeatsTies(_SortedPaging):
    """The next page starts at the cursor's timestamp: ties across a page come back again."""

    def _start(self, ordered: list[TaskRecord], cursor: str) -> int:
        created_at, _ = decode_cursor(cursor)
        return next((i for i, r in enumerate(ordered) if r.created_at <= created_at), len(ordered))


# --- session stores ------------------------------------------------------------------------------


class IgnoresTTL(MemorySessionStore):
    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await super().put(session_id, key, value, ttl=10_000_000.0)


class EmptyIsMissing(MemorySessionStore):
    async def get(self, session_id: str, key: str) -> bytes | None:
        return (await super().get(session_id, key)) or None


class NaiveKeys(MemorySessionStore):
    """Joins session and key with ':' into one namespace, so ('a', 'b:k') and ('a:b', 'k') collide."""

    async def get(self, session_id: str, key: str) -> bytes | None:
        return await super().get("", f"{session_id}:{key}")

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await super().put("", f"{session_id}:{key}", value, ttl=ttl)

    async def delete(self, session_id: str, key: str) -> bool:
        return await super().delete("", f"{session_id}:{key}")

    async def keys(self, session_id: str) -> list[str]:
        prefix = f"{session_id}:"
        return [k[len(prefix) :] for k in await super().keys("") if k.startswith(prefix)]

    async def drop_session(self, session_id: str) -> None:
        for key in await self.keys(session_id):
            await self.delete(session_id, key)


class LateExpiry(MemorySessionStore):
    """``get`` still returns a value at exactly its expiry instant (``now > expires_at``, not ``>=``)."""

    async def get(self, session_id: str, key: str) -> bytes | None:
        entry = self._sessions.get(session_id, {}).get(key)
        if entry is not None and entry[1] == self._clock():
            return entry[0]
        return await super().get(session_id, key)


class LeakyKeys(MemorySessionStore):
    """``keys`` scans by prefix without a delimiter: ``keys('a')`` also lists the keys of ``'a:b'``."""

    async def keys(self, session_id: str) -> list[str]:
        found: set[str] = set()
        for other in list(self._sessions):
            if other.startswith(session_id):
                found.update(await super().keys(other))
        return sorted(found)


class DropLeavesTTLKeys(MemorySessionStore):
    """``drop_session`` forgets the values that were put with an explicit TTL (a second index)."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self._explicit: set[tuple[str, str]] = set()

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await super().put(session_id, key, value, ttl=ttl)
        if ttl is None:
            self._explicit.discard((session_id, key))
        else:
            self._explicit.add((session_id, key))

    async def drop_session(self, session_id: str) -> None:
        for key in await self.keys(session_id):
            if (session_id, key) not in self._explicit:
                await self.delete(session_id, key)


class BlindCompareAndSet(MemorySessionStore):
    """``compare_and_set`` that never compares: two nodes' ``update_state`` would lose updates."""

    async def compare_and_set(
        self, session_id: str, key: str, expected: bytes | None, value: bytes, *, ttl: float | None = None
    ) -> bool:
        await self.put(session_id, key, value, ttl=ttl)
        return True


class StaleCompareAndSet(MemorySessionStore):
    """``compare_and_set`` that compares with an expired value still held (ignores the TTL)."""

    async def compare_and_set(
        self, session_id: str, key: str, expected: bytes | None, value: bytes, *, ttl: float | None = None
    ) -> bool:
        entry = self._sessions.get(session_id, {}).get(key)
        current = None if entry is None else entry[0]
        if current != expected:
            return False
        await self.put(session_id, key, value, ttl=ttl)
        return True


#: What the kit's failure report must say for each bug, so a bug is caught by the right check and not by
#: an unrelated one. A TTL bug must be reported at the very instant the value expired.
SYMPTOMS: dict[type, str] = {
    Resurrecting: r"was updated back to working",
    IgnoresCAS: r"VersionConflict",
    WrongOrder: r"newest first",
    LateTaskExpiry: r"expired at (\S+), now is \1\)|newest first",
    TieBreakReversed: r"newest first",
    CursorSkipsTies: r"newest first",
    CursorRepeatsTies: r"twice across pages|still had a next_cursor",
    IgnoresTTL: r"expected (None|\[|False)|at most",
    EmptyIsMissing: r"= None, expected b''",
    NaiveKeys: r"\('a(:b)?'",
    LateExpiry: r"expired at (\S+), now is \1\)|at its expiry instant",
    LeakyKeys: r"keys\('a'\) = ",
    DropLeavesTTLKeys: r"= \[.+\], expected \[\]|expected None",
    BlindCompareAndSet: r"compare_and_set\(.+\) = True, but the live value is",
    StaleCompareAndSet: r"compare_and_set\(.+\) = (True|False), but the live value is",
}

TASK_BUGS: list[type[MemoryTaskBackend]] = [
    Resurrecting,
    IgnoresCAS,
    WrongOrder,
    LateTaskExpiry,
    TieBreakReversed,
    CursorSkipsTies,
    CursorRepeatsTies,
]
SESSION_BUGS: list[type[MemorySessionStore]] = [
    IgnoresTTL,
    EmptyIsMissing,
    NaiveKeys,
    LateExpiry,
    LeakyKeys,
    DropLeavesTTLKeys,
    BlindCompareAndSet,
    StaleCompareAndSet,
]


def _report(case: type[unittest.TestCase], seed_value: int | None = None) -> str:
    """Run the kit's TestCase; the traceback of its failure, or '' if it passed."""
    if seed_value is not None:
        machine = case.runTest._hypothesis_state_machine_class  # type: ignore[attr-defined]
        seed(seed_value)(machine)
    result = unittest.TestResult()
    case("runTest").run(result)
    problems = result.failures + result.errors
    return problems[0][1] if problems else ""


def _assert_caught(broken: type, report: str) -> None:
    assert report, f"the kit passed {broken.__name__}"
    failures = [line.strip() for line in report.splitlines() if line.strip().startswith("AssertionError: ")]
    assert failures, report
    failure = failures[-1]
    assert re.search(SYMPTOMS[broken], failure), f"{broken.__name__} was caught by the wrong check: {failure}"


def _task_case(broken: type[MemoryTaskBackend], test_settings: settings) -> type[unittest.TestCase]:
    factory: Callable[[Callable[[], float]], MemoryTaskBackend] = lambda clock: broken(clock=clock)  # noqa: E731
    return task_backend_conformance(factory, settings=test_settings)


def _session_case(broken: type[MemorySessionStore], test_settings: settings) -> type[unittest.TestCase]:
    factory: Callable[[Callable[[], float]], MemorySessionStore] = lambda clock: broken(clock=clock)  # noqa: E731
    return session_store_conformance(factory, settings=test_settings)


@pytest.mark.parametrize("broken", TASK_BUGS)
def test_kit_catches_broken_task_backend(broken: type[MemoryTaskBackend]) -> None:
    _assert_caught(broken, _report(_task_case(broken, HUNT)))


@pytest.mark.parametrize("broken", SESSION_BUGS)
def test_kit_catches_broken_session_store(broken: type[MemorySessionStore]) -> None:
    _assert_caught(broken, _report(_session_case(broken, HUNT)))


@pytest.mark.parametrize("broken", [LateTaskExpiry, TieBreakReversed, LateExpiry])
@pytest.mark.parametrize("seed_value", SEEDS)
def test_boundary_bugs_are_caught_under_other_seeds(
    broken: type[MemoryTaskBackend] | type[MemorySessionStore], seed_value: int
) -> None:
    """The two bugs a reviewer once saw slip through, with random (but fixed) seeds, not derandomize."""
    seeded = settings(default_settings(), database=None, phases=[Phase.generate])
    if issubclass(broken, MemoryTaskBackend):
        case = _task_case(broken, seeded)
    else:
        case = _session_case(broken, seeded)
    _assert_caught(broken, _report(case, seed_value))


def test_the_correct_memory_backends_pass_the_same_hunt() -> None:
    """The broken classes fail because of their bug, not because the hunt settings fail everything."""
    assert _report(_task_case(MemoryTaskBackend, HUNT)) == ""
    assert _report(_session_case(MemorySessionStore, HUNT)) == ""
