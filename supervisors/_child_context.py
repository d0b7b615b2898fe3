"""How a supervisor *asks* a child to stop before it cancels it.

Trio has one way to stop a task from outside: cancellation. OTP has two: the ``shutdown`` exit
signal, which a process that traps exits can handle in its own time, and ``kill``. We model the first
as an event the supervisor sets in the child's context: a child that wants an orderly stop (an actor
running ``terminate``, a server draining requests) waits on ``stop_requested()`` and returns; one that
ignores it is cancelled when its ``shutdown`` grace period runs out, as OTP kills a child that does not
exit in time.
"""

from __future__ import annotations

import contextvars

import attrs
import trio


@attrs.define
class ChildContext:
    """What a supervised child can learn about its own supervision."""

    child_id: str
    stop: trio.Event = attrs.field(factory=trio.Event)


_current: contextvars.ContextVar[ChildContext] = contextvars.ContextVar("mcpvisor_child")


def enter_child_context(child_id: str) -> ChildContext:
    """Called by a supervisor inside the task it spawned for a child, before the child's start."""
    ctx = ChildContext(child_id)
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
