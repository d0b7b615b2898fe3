"""mcpvisor.backends: the SessionStateStore and TaskBackend behaviours and their implementations.

The SQLite and Redis classes are imported on first use (module ``__getattr__``), so importing this
package never needs a Redis client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._behaviours import DEFAULT_VALUE_TTL, AtomicSessionStateStore, SessionStateStore, TaskBackend
from ._codec import Codec, decode, decode_task_record, default_codec, encode, encode_task_record, register
from ._errors import (
    BackendClosed,
    BackendError,
    BackendOutcomeUnknown,
    BackendUnavailable,
    InvalidTransition,
    TaskExists,
    TaskNotFound,
    UnsupportedBackendURL,
    VersionConflict,
)
from ._memory import MemorySessionStore, MemoryTaskBackend
from ._startup_check import check_session_store, check_task_backend
from ._task_record import TaskPage, TaskRecord, TaskStatus, check_transition
from ._urls import session_store_from_url, task_backend_from_url

if TYPE_CHECKING:
    from ._redis import RedisSessionStore, RedisTaskBackend  # type: ignore[import-not-found, unused-ignore]
    from ._sqlite import SQLiteSessionStore, SQLiteTaskBackend

__all__ = [
    "DEFAULT_VALUE_TTL",
    "AtomicSessionStateStore",
    "BackendClosed",
    "BackendError",
    "BackendUnavailable",
    "BackendOutcomeUnknown",
    "Codec",
    "InvalidTransition",
    "MemorySessionStore",
    "MemoryTaskBackend",
    "RedisSessionStore",
    "RedisTaskBackend",
    "SQLiteSessionStore",
    "SQLiteTaskBackend",
    "SessionStateStore",
    "TaskBackend",
    "TaskExists",
    "TaskNotFound",
    "TaskPage",
    "TaskRecord",
    "TaskStatus",
    "UnsupportedBackendURL",
    "VersionConflict",
    "check_session_store",
    "check_task_backend",
    "check_transition",
    "decode",
    "decode_task_record",
    "default_codec",
    "encode",
    "encode_task_record",
    "register",
    "session_store_from_url",
    "task_backend_from_url",
]

_LAZY = {
    "SQLiteSessionStore": "._sqlite",
    "SQLiteTaskBackend": "._sqlite",
    "RedisSessionStore": "._redis",
    "RedisTaskBackend": "._redis",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value
