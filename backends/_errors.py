"""Errors every backend raises for the same situations, so callers never depend on one backend."""

from __future__ import annotations


class BackendError(Exception):
    """Base class of every backend error."""


class TaskExists(BackendError):
    """``create`` with a task id that is already stored."""


class TaskNotFound(BackendError):
    """``update`` of a task id that is not stored (never created, deleted or expired)."""


class VersionConflict(BackendError):
    """Compare-and-set failed: someone else updated the record since it was read.

    Re-read the record with ``get``, re-apply the change and try again.
    """

    def __init__(self, task_id: str, expected: int, actual: int) -> None:
        self.task_id = task_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"task {task_id!r} is at version {actual}, not the expected {expected}: re-read it and retry"
        )


class InvalidTransition(BackendError):
    """A status change the MCP tasks utility forbids, e.g. anything out of a terminal status."""


class BackendOutcomeUnknown(BackendError):
    """A write was sent and no answer came (a timeout, a connection lost mid-request): it may or may
    not have been applied, and may still be applied later.

    A backend raises this, and only this, when it cannot know; any other exception from a write
    promises that nothing was written. The runtime reports it to the caller as "outcome unknown",
    never as a plain failure, so an answer never contradicts the store.
    """


class BackendClosed(BackendError):
    """The backend was used after ``aclose()``."""


class UnsupportedBackendURL(BackendError, ValueError):
    """A backend URL whose scheme we do not know, or that is malformed."""


class BackendUnavailable(BackendError):
    """A backend failed its start-up check: it cannot be opened, read or written right now.

    Raised before a server serves anything, so a store that cannot work is refused at start instead of
    failing every request later. The message names the backend and the cause in one line.
    """
