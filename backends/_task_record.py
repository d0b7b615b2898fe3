"""The record of one MCP background task, and the one rule for how its status may change.

Every backend stores exactly these fields; keeping the transition rule here (not in each backend) is
what lets the conformance kit demand the same behaviour from a user's backend as from ours.
"""

from __future__ import annotations

import enum

import attrs

from ._errors import InvalidTransition


class TaskStatus(enum.Enum):
    WORKING = "working"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

_ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WORKING: frozenset({TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED, *_TERMINAL}),
    TaskStatus.INPUT_REQUIRED: frozenset({TaskStatus.INPUT_REQUIRED, TaskStatus.WORKING, *_TERMINAL}),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def check_transition(task_id: str, old: TaskStatus, new: TaskStatus) -> None:
    """Raise ``InvalidTransition`` unless the MCP tasks utility allows ``old -> new``.

    A terminal record is final: not even a same-status rewrite is allowed, so nothing can resurrect it
    or change its result after a client may have read it.
    """
    if new not in _ALLOWED[old]:
        raise InvalidTransition(
            f"task {task_id!r} cannot go from {old.value!r} to {new.value!r}"
            + (" (a terminal status is final)" if old.is_terminal else "")
        )


def _non_negative(_inst: object, attr: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attr.name} must be >= 0, got {value!r}")


@attrs.frozen
class TaskRecord:
    """One background task. Times are wall-clock seconds (``time.time()`` or the backend's clock).

    ``result``/``error``/``input_request`` are opaque bytes (the codec's msgpack), so a backend never
    needs to understand them. ``version`` is owned by the backend: ``create`` stores 1 and every
    successful ``update`` increments it; it is the compare-and-set token.
    """

    task_id: str
    owner: str
    status: TaskStatus = TaskStatus.WORKING
    status_message: str | None = None
    progress: float | None = None
    total: float | None = None
    result: bytes | None = None
    error: bytes | None = None
    input_request: bytes | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    ttl: float | None = attrs.field(default=None, validator=_non_negative)
    poll_interval: float | None = attrs.field(default=None, validator=_non_negative)
    version: int = 0

    @property
    def expires_at(self) -> float | None:
        """MCP counts a task's ttl from its creation."""
        return None if self.ttl is None else self.created_at + self.ttl


@attrs.frozen
class TaskPage:
    """One page of an owner's tasks, newest first; ``next_cursor`` is None on the last page."""

    records: tuple[TaskRecord, ...]
    next_cursor: str | None = None
