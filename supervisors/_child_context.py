"""How a supervisor *asks* a child to stop before it cancels it.

Trio has one way to stop a task from outside: cancellation. OTP has two: the ``shutdown`` exit
signal, which a process that traps exits can handle in its own time, and ``kill``. We model the first
as an event the supervisor sets in the child's context: a child that wants an orderly stop (an actor
running ``terminate``, a server draining requests) waits on ``stop_requested()`` and returns; one that
ignores it is cancelled when its ``shutdown`` grace period runs out, as OTP kills a child that does not
exit in time.

Memory matters here: a dynamic supervisor may hold ten thousand children. So the supervisor's own
per-child record *is* the child's context (no second object), and the stop event is created only when
a child asks for it; an actor asks to be told instead (``_notify_on_stop``) and costs no event at all.
"""

from __future__ import annotations

import contextvars
from typing import Protocol

import trio

from ._exit import SHUTDOWN, ExitReason


class _Stoppable(Protocol):
    def request_stop(self, reason: ExitReason = ..., /) -> object: ...


class ChildContext:
    """What a supervised child can learn about its own supervision: its id and the stop request."""

    __slots__ = ("_stop", "_stop_asked", "_stop_target", "child_id")

    def __init__(self, child_id: str, stop: trio.Event | None = None) -> None:
        self.child_id = child_id
        self._stop = stop
        self._stop_asked = False
        self._stop_target: _Stoppable | None = None

    def __repr__(self) -> str:
        return f"ChildContext(child_id={self.child_id!r}, stop_asked={self.stop_asked})"

    @property
    def stop(self) -> trio.Event:
        """The event the supervisor sets to ask this child to stop (created on first use)."""
        event = self._stop
        if event is None:
            event = self._stop = trio.Event()
            if self._stop_asked:
                event.set()
        return event

    @stop.setter
    def stop(self, event: trio.Event) -> None:
        self._stop = event

    @property
    def stop_asked(self) -> bool:
        """Whether the supervisor has asked this child to stop."""
        return self._stop_asked or (self._stop is not None and self._stop.is_set())

    def _ask_stop(self) -> None:
        """The supervisor's side: set the event if someone made it, tell the notified actor."""
        self._stop_asked = True
        if self._stop is not None:
            self._stop.set()
        target = self._stop_target
        if target is not None:
            target.request_stop(SHUTDOWN)

    def _notify_on_stop(self, target: _Stoppable) -> None:
        """For ``mcpvisor.runtime.actors``: on the stop request call ``target.request_stop(SHUTDOWN)``
        instead of setting an event, so an idle supervised actor waits on its mailbox alone."""
        self._stop_target = target
        if self.stop_asked:
            target.request_stop(SHUTDOWN)


_current: contextvars.ContextVar[ChildContext] = contextvars.ContextVar("mcpvisor_child")


def enter_child_context(child_id: str | ChildContext) -> ChildContext:
    """Called by a supervisor inside the task it spawned for a child, before the child's start."""
    ctx = ChildContext(child_id) if isinstance(child_id, str) else child_id
    _current.set(ctx)
    return ctx


def current_child() -> ChildContext | None:
    """The supervision context of the calling task, or None outside a supervised child."""
    return _current.get(None)


def stop_requested() -> trio.Event:
    """The event a supervisor sets to ask the calling child to stop (OTP's ``shutdown`` signal).

    Raises ``RuntimeError`` outside a supervised child, since such a task has nobody to ask it.
    """
    ctx = _current.get(None)
    if ctx is None:
        raise RuntimeError(
            "stop_requested() called outside a supervised child: only a task started by a "
            "Supervisor or DynamicSupervisor has a supervisor to ask it to stop"
        )
    return ctx.stop
