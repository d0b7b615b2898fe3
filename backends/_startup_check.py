"""Check that a backend works before a server starts serving on it.

A store that cannot work (a SQLite path in a directory that does not exist, an unreachable or read-only
Redis) used to be accepted at start, and then every ``initialize`` failed with a crash message that told
the client to retry. A probe at start turns that into one clear error while nobody depends on the server
yet. The probe uses only the behaviours' own methods, so a user's custom backend is checked the same way.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable

import trio

from ._behaviours import SessionStateStore, TaskBackend
from ._errors import BackendUnavailable

#: The session id the probe writes under: not of the shape the runtime mints (uuid4 hex), so it can
#: never collide with a real session's values.
PROBE_SESSION_ID = "mcpvisor:startup-check"
PROBE_TASK_ID = "mcpvisor:startup-check"

#: Long enough for a cold SQLite file or a Redis across a slow link; short enough that a server that
#: cannot work says so while an operator is still watching.
DEFAULT_CHECK_TIMEOUT = 10.0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _probe(what: str, timeout: float, probe: Awaitable[object]) -> None:
    try:
        with trio.fail_after(timeout):
            await probe
    except trio.TooSlowError:
        raise BackendUnavailable(f"{what} did not answer within {timeout:g}s") from None
    except Exception as exc:
        raise BackendUnavailable(f"{what} cannot be used: {_one_line(exc)}") from exc


async def _session_store_round_trip(store: SessionStateStore) -> None:
    # A write, not only a read: a read-only file or a Redis replica answers reads and refuses writes.
    await store.put(PROBE_SESSION_ID, "probe", b"", ttl=60.0)
    await store.get(PROBE_SESSION_ID, "probe")
    await store.drop_session(PROBE_SESSION_ID)


async def check_session_store(
    store: SessionStateStore, *, name: str, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """Write, read and drop one probe value; ``BackendUnavailable`` (one line, naming ``name``) if any
    step fails or the whole round trip takes longer than ``timeout`` seconds."""
    _check_timeout(timeout)
    await _probe(f"session state store {name}", timeout, _session_store_round_trip(store))


async def check_task_backend(
    backend: TaskBackend, *, name: str, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> None:
    """Read one (absent) task record; ``BackendUnavailable`` as for ``check_session_store``.

    Only a read: creating a record would need an owner and a TTL that mean nothing, and the task
    backend's schema is made by the same first open that a read triggers.
    """
    _check_timeout(timeout)
    await _probe(f"task backend {name}", timeout, backend.get(PROBE_TASK_ID))


def _check_timeout(timeout: float) -> None:
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"the backend check timeout must be a positive number of seconds, got {timeout!r}")
