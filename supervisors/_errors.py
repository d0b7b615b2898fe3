"""Errors raised by supervisors; each message says what happened and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence


class SupervisorError(Exception):
    """Base class of every supervisor error."""


class RestartIntensityExceeded(SupervisorError):
    """More than ``intensity`` restarts within ``period`` seconds: the supervisor gave up (escalation).

    ``reasons`` holds the exit reasons of the restarts in the window, newest last, so the parent (or the
    user) sees why the tree failed, not just that it did.

    As a child's exit reason it counts as OTP's ``shutdown``, not as a crash (see ``is_abnormal``): a
    TRANSIENT child supervisor that gives up is not restarted, a significant one triggers its parent's
    ``auto_shutdown``, and a PERMANENT one is restarted (counting one restart of the parent).
    """

    #: read by ``is_abnormal``: supervisor.erl exits with ``shutdown`` when it gives up
    _otp_shutdown = True

    def __init__(
        self,
        supervisor: str,
        intensity: int,
        period: float,
        reasons: Sequence[BaseException | object] = (),
    ) -> None:
        self.supervisor = supervisor
        self.intensity = intensity
        self.period = period
        self.reasons = tuple(reasons)
        last = f"; last reason: {self.reasons[-1]!r}" if self.reasons else ""
        super().__init__(
            f"supervisor {supervisor!r} exceeded its restart intensity "
            f"({intensity} restarts in {period}s){last}"
        )


class ChildStartError(SupervisorError):
    """A child failed to start; its exception is ``__cause__``."""

    def __init__(self, child_id: str, cause: BaseException | None = None) -> None:
        self.child_id = child_id
        super().__init__(f"child {child_id!r} failed to start: {cause!r}")


class ChildAlreadyPresent(SupervisorError):
    pass


class ChildNotFound(SupervisorError):
    pass


class AmbiguousChildId(SupervisorError):
    """A dynamic supervisor holds several children with this id: name the one you mean by its handle."""


class ChildStillRunning(SupervisorError):
    """``delete_child`` on a running child (OTP: ``{error, running}``): terminate it first."""


class MaxChildrenReached(SupervisorError):
    pass


class SupervisorNotRunning(SupervisorError):
    """The supervisor handle was used after the supervisor stopped."""


class Ignore(Exception):
    """Raise from a child's start, before ``task_status.started()``, to decline to run: OTP's ``ignore``.

    Not a failure, so the supervisor's start goes on and nothing counts against its intensity. A
    permanent or transient child keeps its spec, not running, for ``restart_child``; a temporary child,
    and any child of a dynamic supervisor, is forgotten. Raised after ``started()`` it is a crash.
    """
