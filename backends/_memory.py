"""The embedded default backends: plain dicts in this process, nothing survives a restart.

Expiry never sweeps on the hot path. Every value with a TTL also gets an entry in a heap of expiry
times; a read checks the one value it touches (so nothing past its TTL is ever returned), and
``expire()`` pops only the heap entries that are due. Overwrites leave stale heap entries behind; they
are recognised by a generation number and skipped, and the heap is rebuilt when stale entries
outnumber live ones, so memory stays proportional to what is stored.

The methods are ``async`` to satisfy the behaviours but never yield to the scheduler: a dict lookup
cannot block, and a trio checkpoint per operation would cost more than the operation itself (see
docs/backends.md for the measurement). Callers in a tight loop (the StateStoreServer actor) checkpoint
on their own mailbox anyway.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Final, Self

import attrs
import msgpack

from ._behaviours import DEFAULT_VALUE_TTL
from ._errors import BackendClosed, InvalidTransition, TaskExists, TaskNotFound, VersionConflict
from ._task_record import TaskPage, TaskRecord, check_transition

__all__ = ["MemorySessionStore", "MemoryTaskBackend"]

_NEVER: Final = float("inf")
# Rebuild the heap when it holds more than this many entries beyond twice the live ones.
_HEAP_SLACK: Final = 1024


def _check_ttl(ttl: float | None) -> None:
    # Same rule as the SQLite and Redis stores: 0 is allowed and means "expired at once".
    if ttl is not None and not ttl >= 0:
        raise ValueError(f"ttl must be >= 0 seconds (or None for the default), got {ttl!r}")


class MemorySessionStore:
    """``SessionStateStore`` in a dict: ``{session_id: {key: (value, expires_at, generation)}}``.

    ``default_ttl=None`` keeps values without a TTL forever; ``clock`` is any callable returning
    wall-clock seconds (tests pass a fake one).
    """

    def __init__(
        self, *, default_ttl: float | None = DEFAULT_VALUE_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        _check_ttl(default_ttl)
        self._default_ttl = default_ttl
        self._clock = clock
        self._sessions: dict[str, dict[str, tuple[bytes, float, int]]] = {}
        self._heap: list[tuple[float, int, str, str]] = []
        self._generation = itertools.count()
        self._live = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"MemorySessionStore(default_ttl={self._default_ttl!r}, sessions={len(self._sessions)})"

    async def get(self, session_id: str, key: str) -> bytes | None:
        return self.get_now(session_id, key)

    def get_now(self, session_id: str, key: str) -> bytes | None:
        """``get`` without the coroutine: this store never waits (the server's state store runs a
        read of an idle store straight in the caller's task with it)."""
        if self._closed:
            raise BackendClosed("MemorySessionStore is closed")
        values = self._sessions.get(session_id)
        if values is None:
            return None
        entry = values.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            # Past its TTL: forget it now; its heap entry becomes stale and is skipped later.
            del values[key]
            self._live -= 1
            if not values:
                del self._sessions[session_id]
            return None
        return entry[0]

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self.put_now(session_id, key, value, ttl=ttl)

    def put_now(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """``put`` without the coroutine (see ``get_now``)."""
        if self._closed:
            raise BackendClosed("MemorySessionStore is closed")
        if ttl is None:
            ttl = self._default_ttl
        else:
            _check_ttl(ttl)
        values = self._sessions.get(session_id)
        if values is None:
            values = self._sessions[session_id] = {}
        if key not in values:
            self._live += 1
        if ttl is None:
            values[key] = (value, _NEVER, -1)
            return
        expires_at = self._clock() + ttl
        generation = next(self._generation)
        values[key] = (value, expires_at, generation)
        heap = self._heap
        heapq.heappush(heap, (expires_at, generation, session_id, key))
        if len(heap) > 2 * self._live + _HEAP_SLACK:
            self._compact()

    async def compare_and_set(
        self, session_id: str, key: str, expected: bytes | None, value: bytes, *, ttl: float | None = None
    ) -> bool:
        # Neither call yields, so nothing runs between the read and the write.
        if await self.get(session_id, key) != expected:
            return False
        await self.put(session_id, key, value, ttl=ttl)
        return True

    async def delete(self, session_id: str, key: str) -> bool:
        if self._closed:
            raise BackendClosed("MemorySessionStore is closed")
        values = self._sessions.get(session_id)
        if values is None:
            return False
        entry = values.pop(key, None)
        if entry is None:
            return False
        self._live -= 1
        if not values:
            del self._sessions[session_id]
        return entry[1] > self._clock()

    async def keys(self, session_id: str) -> list[str]:
        if self._closed:
            raise BackendClosed("MemorySessionStore is closed")
        values = self._sessions.get(session_id)
        if not values:
            return []
        now = self._clock()
        return sorted(k for k, entry in values.items() if entry[1] > now)

    async def drop_session(self, session_id: str) -> None:
        self.drop_now(session_id)

    def drop_now(self, session_id: str) -> None:
        """``drop_session`` without the coroutine (see ``get_now``)."""
        if self._closed:
            raise BackendClosed("MemorySessionStore is closed")
        values = self._sessions.pop(session_id, None)
        if values:
            self._live -= len(values)

    async def expire(self) -> int:
        if self._closed:
            raise BackendClosed("MemorySessionStore is closed")
        now = self._clock()
        heap = self._heap
        removed = 0
        while heap and heap[0][0] <= now:
            _, generation, session_id, key = heapq.heappop(heap)
            values = self._sessions.get(session_id)
            if values is None:
                continue
            entry = values.get(key)
            if entry is None or entry[2] != generation:
                continue  # stale: overwritten, deleted or already dropped
            del values[key]
            self._live -= 1
            removed += 1
            if not values:
                del self._sessions[session_id]
        return removed

    def _compact(self) -> None:
        """Drop stale heap entries: O(n), run only once per ~n overwrites."""
        self._heap = [
            (entry[1], entry[2], session_id, key)
            for session_id, values in self._sessions.items()
            for key, entry in values.items()
            if entry[2] >= 0
        ]
        heapq.heapify(self._heap)

    async def aclose(self) -> None:
        self._closed = True
        self._sessions.clear()
        self._heap.clear()
        self._live = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def encode_cursor(created_at: float, task_id: str) -> str:
    """An opaque position in the newest-first order: just after ``(created_at, task_id)``."""
    return base64.urlsafe_b64encode(msgpack.packb([created_at, task_id])).decode("ascii")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        position: Any = msgpack.unpackb(base64.urlsafe_b64decode(cursor.encode("ascii")))
        created_at, task_id = position
        if not isinstance(created_at, float | int) or isinstance(created_at, bool):
            raise TypeError("created_at")  # noqa: TRY301 (one error path for every malformation)
        if not isinstance(task_id, str):
            raise TypeError("task_id")  # noqa: TRY301
    except Exception as exc:
        raise ValueError(f"malformed task list cursor {cursor!r}: pass a next_cursor from list()") from exc
    return float(created_at), task_id


class MemoryTaskBackend:
    """``TaskBackend`` in a dict, with a per-owner index sorted by ``(created_at, task_id)``.

    The index is ascending with the created_at negated, so "newest first, then task_id" is a plain
    left-to-right walk and a cursor is a ``bisect``.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._records: dict[str, TaskRecord] = {}
        # owner -> sorted [(-created_at, task_id)]
        self._index: dict[str, list[tuple[float, str]]] = {}
        self._heap: list[tuple[float, str, int]] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryTaskBackend(tasks={len(self._records)})"

    def _check_open(self) -> None:
        if self._closed:
            raise BackendClosed("MemoryTaskBackend is closed")

    def _live(self, task_id: str, now: float) -> TaskRecord | None:
        record = self._records.get(task_id)
        if record is None:
            return None
        expires_at = record.expires_at
        if expires_at is not None and expires_at <= now:
            self._remove(record)
            return None
        return record

    def _remove(self, record: TaskRecord) -> None:
        del self._records[record.task_id]
        entries = self._index[record.owner]
        position = (-record.created_at, record.task_id)
        i = bisect.bisect_left(entries, position)
        del entries[i]
        if not entries:
            del self._index[record.owner]

    async def create(self, record: TaskRecord) -> TaskRecord:
        self._check_open()
        if self._live(record.task_id, self._clock()) is not None:
            raise TaskExists(f"task {record.task_id!r} already exists")
        stored = attrs.evolve(record, version=1)
        self._records[record.task_id] = stored
        bisect.insort(self._index.setdefault(record.owner, []), (-record.created_at, record.task_id))
        self._push_expiry(stored)
        return stored

    def _push_expiry(self, record: TaskRecord) -> None:
        expires_at = record.expires_at
        if expires_at is not None:
            heapq.heappush(self._heap, (expires_at, record.task_id, record.version))
            if len(self._heap) > 2 * len(self._records) + _HEAP_SLACK:
                self._compact()

    async def get(self, task_id: str) -> TaskRecord | None:
        self._check_open()
        return self._live(task_id, self._clock())

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        self._check_open()
        stored = self._live(record.task_id, self._clock())
        if stored is None:
            raise TaskNotFound(f"task {record.task_id!r} does not exist (never created, deleted or expired)")
        if stored.version != expected_version:
            raise VersionConflict(record.task_id, expected_version, stored.version)
        if record.owner != stored.owner or record.created_at != stored.created_at:
            raise InvalidTransition(f"task {record.task_id!r}: owner and created_at cannot change")
        check_transition(record.task_id, stored.status, record.status)
        new = attrs.evolve(record, version=expected_version + 1)
        self._records[record.task_id] = new
        if new.ttl != stored.ttl:
            self._push_expiry(new)
        return new

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50) -> TaskPage:
        self._check_open()
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        entries = self._index.get(owner)
        start = 0
        if cursor is not None:
            created_at, task_id = decode_cursor(cursor)
            if entries:
                start = bisect.bisect_right(entries, (-created_at, task_id))
        if not entries:
            return TaskPage(())
        now = self._clock()
        page: list[TaskRecord] = []
        expired: list[TaskRecord] = []
        more = False
        for _, task_id in itertools.islice(entries, start, None):
            record = self._records[task_id]
            expires_at = record.expires_at
            if expires_at is not None and expires_at <= now:
                expired.append(record)
                continue
            if len(page) == limit:
                more = True
                break
            page.append(record)
        for record in expired:
            self._remove(record)
        if more:
            last = page[-1]
            return TaskPage(tuple(page), encode_cursor(last.created_at, last.task_id))
        return TaskPage(tuple(page))

    async def delete(self, task_id: str) -> bool:
        self._check_open()
        record = self._records.get(task_id)
        if record is None:
            return False
        self._remove(record)
        expires_at = record.expires_at
        return expires_at is None or expires_at > self._clock()

    async def expire(self) -> int:
        self._check_open()
        now = self._clock()
        heap = self._heap
        removed = 0
        while heap and heap[0][0] <= now:
            expires_at, task_id, _ = heapq.heappop(heap)
            record = self._records.get(task_id)
            # Skip stale entries: the id was deleted, recreated, or its ttl changed since.
            if record is not None and record.expires_at == expires_at:
                self._remove(record)
                removed += 1
        return removed

    def _compact(self) -> None:
        self._heap = [
            (r.created_at + r.ttl, r.task_id, r.version) for r in self._records.values() if r.ttl is not None
        ]
        heapq.heapify(self._heap)

    async def aclose(self) -> None:
        self._closed = True
        self._records.clear()
        self._index.clear()
        self._heap.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
