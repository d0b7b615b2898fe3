"""The SQLite backends: durable on one machine, stdlib ``sqlite3`` driven from trio.

``SQLiteSessionStore`` and ``SQLiteTaskBackend`` may share one file (separate tables). The connection
handling and the durability choice (WAL, ``synchronous=NORMAL``: survives ``kill -9`` of the process,
not an OS crash) live in ``_sqlite_database``.
"""

from __future__ import annotations

from ._sqlite_session_store import SQLiteSessionStore
from ._sqlite_task_backend import SQLiteTaskBackend

__all__ = ["SQLiteSessionStore", "SQLiteTaskBackend"]
