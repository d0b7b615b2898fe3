"""The SQLite backends pass the conformance kit, each example on a fresh database file.

Half the kit's default examples: every example opens a new file and a worker thread, and the kit's
targeted rules (exact expiry instants, equal timestamps) do not need many examples to bite. The memory
backends run the full defaults.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from mcpvisor.backends import SQLiteSessionStore, SQLiteTaskBackend
from mcpvisor.backends.testing import default_settings, session_store_conformance, task_backend_conformance

_FEWER = settings(default_settings(), max_examples=20)


def _fresh_file() -> Path:
    return Path(tempfile.mkdtemp(prefix="mcpvisor-sqlite-kit-")) / "kit.db"


def _remove(backend: SQLiteSessionStore | SQLiteTaskBackend) -> None:
    shutil.rmtree(Path(backend.path).parent, ignore_errors=True)


TestSQLiteSessionStore = session_store_conformance(
    lambda clock: SQLiteSessionStore(_fresh_file(), clock=clock), cleanup=_remove, settings=_FEWER
)
TestSQLiteSessionStoreShortDefaultTTL = session_store_conformance(
    lambda clock: SQLiteSessionStore(_fresh_file(), clock=clock, default_ttl=1.5),
    default_ttl=1.5,
    cleanup=_remove,
    settings=settings(default_settings(), max_examples=10),
)
TestSQLiteTaskBackend = task_backend_conformance(
    lambda clock: SQLiteTaskBackend(_fresh_file(), clock=clock), cleanup=_remove, settings=_FEWER
)
