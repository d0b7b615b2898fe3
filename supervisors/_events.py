"""Structured supervision events: what a supervisor tells its ``on_event`` hooks and its logger.

Every event is a frozen record so a hook can keep it, compare it or ship it elsewhere; the logger
``mcpvisor.supervisors`` receives the same record under ``extra={"event": ...}``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import attrs

from ._exit import ExitReason

logger = logging.getLogger("mcpvisor.supervisors")


@attrs.frozen
class ChildStarted:
    supervisor: str
    child_id: str
    handle: Any = None


@attrs.frozen
class ChildRestarted:
    supervisor: str
    child_id: str
    handle: Any = None


@attrs.frozen
class ChildExited:
    supervisor: str
    child_id: str
    reason: ExitReason


@attrs.frozen
class ChildStartFailed:
    supervisor: str
    child_id: str
    error: BaseException


@attrs.frozen
class SupervisorEscalated:
    supervisor: str
    error: BaseException


@attrs.frozen
class SupervisorAutoShutdown:
    supervisor: str
    child_id: str


@attrs.frozen
class ChildIgnored:
    """The child's start raised ``Ignore`` (OTP's ``ignore``): not a failure, and nothing runs."""

    supervisor: str
    child_id: str


@attrs.frozen
class SupervisorStopped:
    supervisor: str
    reason: ExitReason


SupervisorEvent = (
    ChildStarted
    | ChildRestarted
    | ChildExited
    | ChildStartFailed
    | ChildIgnored
    | SupervisorEscalated
    | SupervisorAutoShutdown
    | SupervisorStopped
)
#: A hook returns nothing useful; ``object`` (not ``None``) so an async hook can be caught and reported.
EventHook = Callable[[Any], object]


def emit(hook: EventHook | None, event: SupervisorEvent) -> None:
    """Log ``event`` and hand it to ``hook``; a failing hook is logged, never kills the supervisor."""
    level = logging.WARNING if isinstance(event, SupervisorEscalated | ChildStartFailed) else logging.INFO
    if logger.isEnabledFor(level):
        logger.log(level, "%r", event, extra={"event": event})
    if hook is not None:
        try:
            result = hook(event)
        except Exception:
            logger.exception("on_event hook %r failed on %r", hook, event)
            return
        if inspect.iscoroutine(result):
            # An ``async def`` hook would otherwise be dropped with only a "never awaited" warning at
            # garbage collection; a supervisor cannot await it without stalling its restarts.
            result.close()
            logger.error(
                "on_event hook %r is async, but hooks are called synchronously and must not block; "
                "use a plain function (to do async work, send the event to a memory channel)",
                hook,
            )
