"""``SQLiteTaskBackend``: task records in one SQLite table, compare-and-set in a single UPDATE."""

from __future__ import annotations

import base64
import binascii
import json
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Final, Self

import attrs

from ._errors import InvalidTransition, TaskExists, TaskNotFound, VersionConflict
from ._sqlite_database import Database, Schema
from ._task_record import TaskPage, TaskRecord, TaskStatus, check_transition

_SCHEMA: Final = Schema(
    "tasks",
    1,
    [
        # expires_at = created_at + ttl, NULL when the task has no ttl; kept as a column so expiry
        # filters and expire() use an index instead of computing it per row.
        "CREATE TABLE IF NOT EXISTS mcpvisor_tasks ("
        " task_id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,"
        " status_message TEXT, progress REAL, total REAL, result BLOB, error BLOB, input_request BLOB,"
        " created_at REAL NOT NULL, updated_at REAL NOT NULL, ttl REAL, poll_interval REAL,"
        " version INTEGER NOT NULL, expires_at REAL)",
        # Keyset paging of one owner's tasks, newest first: the page query walks this index.
        "CREATE INDEX IF NOT EXISTS mcpvisor_tasks_owner_page"
        " ON mcpvisor_tasks (owner, created_at DESC, task_id)",
        "CREATE INDEX IF NOT EXISTS mcpvisor_tasks_expiry"
        " ON mcpvisor_tasks (expires_at) WHERE expires_at IS NOT NULL",
    ],
)

_COLUMNS: Final = (
    "task_id, owner, status, status_message, progress, total, result, error, input_request,"
    " created_at, updated_at, ttl, poll_interval, version"
)
_LIVE: Final = "(expires_at IS NULL OR expires_at > ?)"

_GET: Final = f"SELECT {_COLUMNS} FROM mcpvisor_tasks WHERE task_id = ? AND {_LIVE}"
# An expired record still in the table (expire() has not run yet) is gone as far as anyone can see,
# so create replaces it instead of reporting TaskExists.
_CREATE: Final = (
    f"INSERT INTO mcpvisor_tasks ({_COLUMNS}, expires_at) VALUES ({', '.join('?' * 15)})"
    " ON CONFLICT (task_id) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in f"{_COLUMNS}, expires_at".split(",")[1:])
    + " WHERE mcpvisor_tasks.expires_at IS NOT NULL AND mcpvisor_tasks.expires_at <= ?"
)
_DIAGNOSE: Final = (
    "SELECT owner, created_at, status, version, expires_at FROM mcpvisor_tasks WHERE task_id = ?"
)
_DELETE: Final = "DELETE FROM mcpvisor_tasks WHERE task_id = ? RETURNING expires_at"
_DELETE_DEAD: Final = (
    "DELETE FROM mcpvisor_tasks WHERE task_id = ? AND expires_at IS NOT NULL AND expires_at <= ?"
)
_EXPIRE: Final = "DELETE FROM mcpvisor_tasks WHERE expires_at IS NOT NULL AND expires_at <= ?"
_PAGE_FIRST: Final = (
    f"SELECT {_COLUMNS} FROM mcpvisor_tasks WHERE owner = ? AND {_LIVE}"
    " ORDER BY created_at DESC, task_id LIMIT ?"
)
# After (created_at, task_id) in (created_at DESC, task_id ASC) order. Written as a range on
# created_at plus a tie-break so SQLite seeks the index instead of filtering the owner's rows.
_PAGE_AFTER: Final = (
    f"SELECT {_COLUMNS} FROM mcpvisor_tasks WHERE owner = ? AND {_LIVE}"
    " AND created_at <= ? AND (created_at < ? OR task_id > ?)"
    " ORDER BY created_at DESC, task_id LIMIT ?"
)


def _allowed_from(new: TaskStatus) -> tuple[TaskStatus, ...]:
    allowed = []
    for old in TaskStatus:
        try:
            check_transition("", old, new)
        except InvalidTransition:
            continue
        allowed.append(old)
    return tuple(allowed)


def _update_sql(new: TaskStatus) -> str:
    # The whole compare-and-set is this one statement: it writes only if the version matches, the
    # record is live, the immutable fields are unchanged and the stored status may move to `new`.
    # When it writes nothing, a follow-up read only decides which error to raise.
    allowed = ", ".join(f"'{s.value}'" for s in _allowed_from(new)) or "NULL"
    return (
        "UPDATE mcpvisor_tasks SET status = ?, status_message = ?, progress = ?, total = ?, result = ?,"
        " error = ?, input_request = ?, updated_at = ?, ttl = ?, poll_interval = ?, expires_at = ?,"
        " version = version + 1"
        f" WHERE task_id = ? AND version = ? AND owner = ? AND created_at = ? AND status IN ({allowed})"
        f" AND {_LIVE}"
    )


_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

_UPDATE: Final = {status: _update_sql(status) for status in TaskStatus}


def _row_params(record: TaskRecord, version: int) -> tuple[Any, ...]:
    return (
        record.task_id,
        record.owner,
        record.status.value,
        record.status_message,
        record.progress,
        record.total,
        record.result,
        record.error,
        record.input_request,
        record.created_at,
        record.updated_at,
        record.ttl,
        record.poll_interval,
        version,
        record.expires_at,
    )


def _record(row: tuple[Any, ...]) -> TaskRecord:
    return TaskRecord(
        task_id=row[0],
        owner=row[1],
        status=TaskStatus(row[2]),
        status_message=row[3],
        progress=row[4],
        total=row[5],
        result=row[6],
        error=row[7],
        input_request=row[8],
        created_at=row[9],
        updated_at=row[10],
        ttl=row[11],
        poll_interval=row[12],
        version=row[13],
    )


def _encode_cursor(record: TaskRecord) -> str:
    raw = json.dumps([float(record.created_at).hex(), record.task_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        decoded = json.loads(base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True))
        created_hex, task_id = decoded
        if not isinstance(created_hex, str) or not isinstance(task_id, str):
            raise TypeError("cursor fields")  # noqa: TRY301 (one error path for every malformation)
        return float.fromhex(created_hex), task_id
    except (ValueError, TypeError, binascii.Error, AttributeError) as exc:
        raise ValueError(f"malformed task list cursor {cursor!r}: pass a next_cursor from list()") from exc


class SQLiteTaskBackend:
    """A ``TaskBackend`` in a SQLite file: one machine, survives a crash of the process.

    ``path`` may be the same file as a ``SQLiteSessionStore``'s (separate tables). The file is
    opened on first use. ``clock`` returns wall-clock seconds and decides which records are past
    their ``expires_at``; record timestamps themselves are stored as given.

    ``update`` is a single conditional ``UPDATE`` (version, status transition, immutable fields and
    liveness all in its ``WHERE``), so it is atomic even against another process on the same file.
    ``list`` pages with a keyset cursor over an index, never an ``OFFSET`` scan.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self._db = Database(path, _SCHEMA, owner="SQLiteTaskBackend")
        self._clock = clock

    def __repr__(self) -> str:
        return f"SQLiteTaskBackend({self._db.path!r})"

    @property
    def path(self) -> str:
        """The database file (as given to the constructor)."""
        return self._db.path

    async def create(self, record: TaskRecord) -> TaskRecord:
        stored = attrs.evolve(record, version=1)
        params = (*_row_params(stored, 1), self._clock())

        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(_CREATE, params).rowcount

        if await self._db.run(op) != 1:
            raise TaskExists(f"task {record.task_id!r} already exists")
        return stored

    async def get(self, task_id: str) -> TaskRecord | None:
        params = (task_id, self._clock())

        def op(conn: sqlite3.Connection) -> TaskRecord | None:
            rows = conn.execute(_GET, params).fetchall()
            return _record(rows[0]) if rows else None

        return await self._db.run(op)

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        sql = _UPDATE[record.status]
        now = self._clock()
        params = (
            record.status.value,
            record.status_message,
            record.progress,
            record.total,
            record.result,
            record.error,
            record.input_request,
            record.updated_at,
            record.ttl,
            record.poll_interval,
            record.expires_at,
            record.task_id,
            expected_version,
            record.owner,
            record.created_at,
            now,
        )

        # A version SQLite cannot hold (beyond 64 bits) can never match: only diagnose.
        fits = _INT64_MIN <= expected_version <= _INT64_MAX

        def op(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            if fits and conn.execute(sql, params).rowcount == 1:
                return None
            rows = conn.execute(_DIAGNOSE, (record.task_id,)).fetchall()
            if rows and rows[0][4] is not None and rows[0][4] <= now:
                # The record is past its ttl: remove it now, as the memory backend does, so
                # TaskNotFound means "not stored" and a later expire() does not count it again.
                conn.execute(_DELETE_DEAD, (record.task_id, now)).close()
            return tuple(rows[0]) if rows else ()

        failure = await self._db.run(op)
        if failure is not None:
            self._raise_update_failure(record, expected_version, failure, now)
        return attrs.evolve(record, version=expected_version + 1)

    @staticmethod
    def _raise_update_failure(
        record: TaskRecord, expected_version: int, stored: tuple[Any, ...], now: float
    ) -> None:
        if not stored or (stored[4] is not None and stored[4] <= now):
            raise TaskNotFound(f"task {record.task_id!r} does not exist (never created, deleted or expired)")
        owner, created_at, status, version, _ = stored
        if version != expected_version:
            raise VersionConflict(record.task_id, expected_version, version)
        if owner != record.owner or created_at != record.created_at:
            raise InvalidTransition(f"task {record.task_id!r}: owner and created_at cannot change")
        check_transition(record.task_id, TaskStatus(status), record.status)
        # Only reachable if another process changed the row between our UPDATE and the read.
        raise VersionConflict(record.task_id, expected_version, version)

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50) -> TaskPage:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        now = self._clock()
        # One row more than the page tells whether there is a next page without a COUNT.
        params: tuple[Any, ...]
        if cursor is None:
            sql, params = _PAGE_FIRST, (owner, now, limit + 1)
        else:
            after_created, after_id = _decode_cursor(cursor)
            sql = _PAGE_AFTER
            params = (owner, now, after_created, after_created, after_id, limit + 1)

        def op(conn: sqlite3.Connection) -> list[TaskRecord]:
            return [_record(row) for row in conn.execute(sql, params)]

        records = await self._db.run(op)
        if len(records) <= limit:
            return TaskPage(tuple(records), None)
        page = tuple(records[:limit])
        return TaskPage(page, _encode_cursor(page[-1]))

    async def delete(self, task_id: str) -> bool:
        now = self._clock()

        def op(conn: sqlite3.Connection) -> bool:
            rows = conn.execute(_DELETE, (task_id,)).fetchall()
            return bool(rows) and (rows[0][0] is None or rows[0][0] > now)

        return await self._db.run(op)

    async def expire(self) -> int:
        params = (self._clock(),)
        return await self._db.run(lambda conn: conn.execute(_EXPIRE, params).rowcount)

    async def aclose(self) -> None:
        await self._db.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
