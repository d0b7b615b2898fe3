"""The SQLite backends pass the conformance kit, each example on a fresh database file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from mcpvisor.backends import SQLiteSessionStore, SQLiteTaskBackend
from mcpvisor.backends.testing import session_store_conformance, task_backend_conformance


def _fresh_file() -> Path:
    return Path(tempfile.mkdtemp(prefix="mcpvisor-sqlite-kit-")) / "kit.db"


def _remove(backend: SQLiteSessionStore | SQLiteTaskBackend) -> None:
    shutil.rmtree(Path(backend.path).parent, ignore_errors=True)


TestSQLiteSessionStore = session_store_conformance(
    lambda clock: SQLiteSessionStore(_fresh_file(), clock=clock), cleanup=_remove
)
TestSQLiteSessionStoreShortDefaultTTL = session_store_conformance(
    lambda clock: SQLiteSessionStore(_fresh_file(), clock=clock, default_ttl=1.5),
    default_ttl=1.5,
    cleanup=_remove,
)
TestSQLiteTaskBackend = task_backend_conformance(
    lambda clock: SQLiteTaskBackend(_fresh_file(), clock=clock), cleanup=_remove
)
