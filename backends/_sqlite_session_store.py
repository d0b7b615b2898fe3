"""``SQLiteSessionStore``: session values in one SQLite table, durable across process crashes."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Final, Self

from ._behaviours import DEFAULT_VALUE_TTL
from ._sqlite_database import Database, Schema

_SCHEMA: Final = Schema(
    "session_values",
    1,
    [
        # expires_at is absolute wall-clock seconds; +inf for a value that never expires.
        "CREATE TABLE IF NOT EXISTS mcpvisor_session_values ("
        " session_id TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at REAL NOT NULL,"
        " PRIMARY KEY (session_id, key)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS mcpvisor_session_values_expiry ON mcpvisor_session_values (expires_at)",
    ],
)

# A value is live while now < expires_at; every read filters on it, so a value past its TTL is never
# returned even before expire() removes it.
_GET: Final = "SELECT value FROM mcpvisor_session_values WHERE session_id = ? AND key = ? AND expires_at > ?"
_PUT: Final = (
    "INSERT INTO mcpvisor_session_values (session_id, key, value, expires_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
# compare_and_set, each one statement (so atomic against every connection to the file): an insert
# that may replace only an expired row, or an update of the live row holding the expected value.
_SET_IF_ABSENT: Final = _PUT + " WHERE mcpvisor_session_values.expires_at <= ?"
_SET_IF_EQUAL: Final = (
    "UPDATE mcpvisor_session_values SET value = ?, expires_at = ?"
    " WHERE session_id = ? AND key = ? AND value = ? AND expires_at > ?"
)
_DELETE: Final = "DELETE FROM mcpvisor_session_values WHERE session_id = ? AND key = ? RETURNING expires_at"
_KEYS: Final = "SELECT key FROM mcpvisor_session_values WHERE session_id = ? AND expires_at > ? ORDER BY key"
_DROP: Final = "DELETE FROM mcpvisor_session_values WHERE session_id = ?"
_EXPIRE: Final = "DELETE FROM mcpvisor_session_values WHERE expires_at <= ?"


def _check_ttl(ttl: float | None, what: str) -> None:
    if ttl is not None and (math.isnan(ttl) or ttl < 0):
        raise ValueError(f"{what} must be a number of seconds >= 0 (or None), got {ttl!r}")


class SQLiteSessionStore:
    """A ``SessionStateStore`` in a SQLite file: one machine, survives a crash of the process.

    ``path`` is the database file (created if missing; ``":memory:"`` for a private in-memory
    database). It may be shared with a ``SQLiteTaskBackend``: each uses its own tables. The file is
    opened on first use, not in the constructor, so building a store is cheap and needs no event loop.

    ``default_ttl`` applies to a ``put`` without ``ttl`` (``None``: such values never expire).
    ``clock`` returns wall-clock seconds and decides expiry; tests pass a fake one. An awaited ``put``
    that returned is on disk in the WAL and survives ``kill -9`` of the process (see
    ``_sqlite_database`` for the durability trade-off).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        default_ttl: float | None = DEFAULT_VALUE_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_ttl(default_ttl, "default_ttl")
        self._db = Database(path, _SCHEMA, owner="SQLiteSessionStore")
        self._default_ttl = default_ttl
        self._clock = clock

    def __repr__(self) -> str:
        return f"SQLiteSessionStore({self._db.path!r})"

    @property
    def path(self) -> str:
        """The database file (as given to the constructor)."""
        return self._db.path

    async def get(self, session_id: str, key: str) -> bytes | None:
        params = (session_id, key, self._clock())

        def op(conn: sqlite3.Connection) -> bytes | None:
            # fetchall, not fetchone: it steps the statement to its end, so the read transaction
            # ends here and never pins the WAL against checkpoints.
            rows = conn.execute(_GET, params).fetchall()
            return bytes(rows[0][0]) if rows else None

        return await self._db.run(op)

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(
                f"session values are bytes (encode them with the codec), got {type(value).__name__}"
            )
        _check_ttl(ttl, "ttl")
        ttl = self._default_ttl if ttl is None else ttl
        expires_at = math.inf if ttl is None else self._clock() + ttl
        params = (session_id, key, bytes(value), expires_at)
        await self._db.run(lambda conn: conn.execute(_PUT, params).close())

    async def compare_and_set(
        self, session_id: str, key: str, expected: bytes | None, value: bytes, *, ttl: float | None = None
    ) -> bool:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(
                f"session values are bytes (encode them with the codec), got {type(value).__name__}"
            )
        _check_ttl(ttl, "ttl")
        ttl = self._default_ttl if ttl is None else ttl
        now = self._clock()
        expires_at = math.inf if ttl is None else now + ttl
        sql: str
        params: tuple[object, ...]
        if expected is None:
            sql, params = _SET_IF_ABSENT, (session_id, key, bytes(value), expires_at, now)
        else:
            sql, params = _SET_IF_EQUAL, (bytes(value), expires_at, session_id, key, bytes(expected), now)
        return await self._db.run(lambda conn: conn.execute(sql, params).rowcount == 1)

    async def delete(self, session_id: str, key: str) -> bool:
        params = (session_id, key)
        now = self._clock()

        def op(conn: sqlite3.Connection) -> bool:
            # An expired value is removed too (it is garbage), but it was not "there".
            rows = conn.execute(_DELETE, params).fetchall()
            return bool(rows) and rows[0][0] > now

        return await self._db.run(op)

    async def keys(self, session_id: str) -> list[str]:
        # SQLite's BINARY collation orders UTF-8 bytes, which is code point order: Python's sorted().
        params = (session_id, self._clock())
        return await self._db.run(lambda conn: [row[0] for row in conn.execute(_KEYS, params)])

    async def drop_session(self, session_id: str) -> None:
        params = (session_id,)
        await self._db.run(lambda conn: conn.execute(_DROP, params).close())

    async def expire(self) -> int:
        params = (self._clock(),)
        return await self._db.run(lambda conn: conn.execute(_EXPIRE, params).rowcount)

    async def aclose(self) -> None:
        await self._db.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
