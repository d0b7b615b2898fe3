"""The two backend behaviours. A user's backend is any plain class with these methods.

Both are ``typing.Protocol``s, not base classes: nothing to inherit, and ``isinstance`` works at run
time for a quick sanity check (it checks method names only; the conformance kit checks behaviour).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ._task_record import TaskPage, TaskRecord

#: Default lifetime of a session value: one day, so an abandoned session never pins memory forever.
DEFAULT_VALUE_TTL: float = 24 * 60 * 60.0


@runtime_checkable
class SessionStateStore(Protocol):
    """Per-session key/value storage. Values are bytes (the runtime encodes them with the codec).

    ``ttl`` is seconds from the ``put``; ``None`` means the store's default TTL
    (``DEFAULT_VALUE_TTL`` unless configured). A value past its TTL is never returned, whether or not
    ``expire()`` has run yet.
    """

    async def get(self, session_id: str, key: str) -> bytes | None: ...

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def delete(self, session_id: str, key: str) -> bool:
        """Remove one key; True if it was there (and not expired)."""
        ...

    async def keys(self, session_id: str) -> list[str]:
        """The session's live keys, sorted."""
        ...

    async def drop_session(self, session_id: str) -> None: ...

    async def expire(self) -> int:
        """Physically remove what is past its TTL; returns how many values were removed."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class AtomicSessionStateStore(SessionStateStore, Protocol):
    """A ``SessionStateStore`` that can also write conditionally, atomically across every process
    sharing it. Optional: the runtime uses it when present (``update_state`` is then exact across
    nodes) and serialises updates in its own StateStoreServer otherwise (exact within one node).
    """

    async def compare_and_set(
        self, session_id: str, key: str, expected: bytes | None, value: bytes, *, ttl: float | None = None
    ) -> bool:
        """Store ``value`` (as ``put`` would, ``ttl`` included) only if the key's live value is
        ``expected`` (``None``: absent or expired); True if it was stored, False if not (nothing
        changed). The comparison and the write are one atomic step for every client of the store."""
        ...


@runtime_checkable
class TaskBackend(Protocol):
    """Storage of MCP background-task records with compare-and-set updates and cursor paging.

    A record past its ``expires_at`` is never returned, listed or updated (``TaskNotFound``).
    """

    async def create(self, record: TaskRecord) -> TaskRecord:
        """Store a new record with ``version=1``; ``TaskExists`` if the id is taken.

        The record is stored as given otherwise (the caller stamps ``created_at``/``updated_at``). An id
        whose record has expired is free again.
        """
        ...

    async def get(self, task_id: str) -> TaskRecord | None: ...

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        """Replace the stored record if its version is ``expected_version``.

        Returns the stored record with ``version = expected_version + 1``. Raises ``TaskNotFound``,
        ``VersionConflict``, or ``InvalidTransition`` (checked with ``check_transition`` against the
        stored status, so a terminal record is never resurrected). ``owner`` and ``created_at`` are
        immutable: a change to them is ``InvalidTransition``. When the version is stale *and* the change
        is forbidden, either error may be raised. ``ttl`` may change (the expiry moves with it).
        """
        ...

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50) -> TaskPage:
        """One owner's records newest first (``created_at`` descending, then ``task_id`` ascending).

        ``next_cursor`` is None exactly when no further live record follows the page.

        ``cursor`` is the opaque ``next_cursor`` of the previous page; a malformed cursor raises
        ``ValueError``. ``limit`` must be >= 1.
        """
        ...

    async def delete(self, task_id: str) -> bool: ...

    async def expire(self) -> int: ...

    async def aclose(self) -> None: ...
