"""One session's place under the SessionSupervisor: run its actor, restart it under the same id after a
crash, and close the session when it crashes too often.

Restart intensity must be counted per session: a crash-looping session must end *itself*, not exhaust
the SessionSupervisor's intensity and, through rest_for_one, take every other session down. A
``Supervisor`` per session does exactly that, but measured ~9 KB per idle session (its nursery, channel,
lock, events and stop-watcher task), close to half a session's footprint, for one transient child. So
the keeper applies the same rule itself, with the supervisors' own ``add_restart`` (keep the restart
times within ``period`` seconds, inclusive, add now, and give up when there are more than
``intensity``). It reports the same supervision events (``ChildExited``, ``ChildRestarted``,
``SupervisorEscalated``, under the supervisor name ``session <id>``), to the ``mcpvisor.supervisors``
logger and the server's ``on_event``. The SessionSupervisor sees one temporary child per session, so
neither a crash nor a give-up counts against its own intensity.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from mcpvisor.supervisors import (
    ChildExited,
    ChildRestarted,
    RestartIntensityExceeded,
    SupervisorEscalated,
    current_child,
)
from mcpvisor.supervisors._events import emit
from mcpvisor.supervisors._restart_intensity import add_restart

from ._session_slot import SessionSlot

logger = logging.getLogger("mcpvisor.runtime.tree")


class _Restarted:
    """The ``task_status`` of a restarted incarnation: nobody waits for it, it reports the restart."""

    def __init__(self, name: str, on_event: Callable[[Any], None] | None) -> None:
        self.name = name
        self.on_event = on_event

    def started(self, value: Any = None) -> None:
        emit(self.on_event, ChildRestarted(self.name, "actor", value))


async def keep_session(
    slot: SessionSlot,
    deps: Any,
    *,
    intensity: int,
    period: float,
    on_event: Callable[[Any], None] | None,
    incarnation: Callable[..., Awaitable[None]],
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    name: str | None = None,
) -> None:
    """Run incarnations of the session's actor until one ends normally (close, idle, shutdown) or the
    session exceeds its restart intensity. A failed *first* start fails ``start_child``.

    ``incarnation(slot, deps, task_status=...)`` runs one life of the actor (``run_incarnation`` for a
    session, ``run_handle_incarnation`` for a state handle: passed in, so this keeper imports no actor
    and one keeper applies the same restart rule to both); ``name`` names it in events and logs."""
    name = name if name is not None else f"session {slot.label}"
    child = current_child()
    restarts: list[tuple[float, BaseException]] = []
    status: Any = task_status
    while True:
        before = slot.incarnations
        try:
            await incarnation(slot, deps, task_status=status)
        except Exception as exc:
            if status is task_status and slot.incarnations == before:
                slot.fail_in_flight(f"session failed to start ({type(exc).__name__})")
                raise  # the session never started
            reason: BaseException = exc
        else:
            return  # a normal end is not restarted (a transient child)
        emit(on_event, ChildExited(name, "actor", reason))
        crash = type(reason).__name__
        if slot.closing or (child is not None and child.stop.is_set()):
            slot.fail_in_flight(f"session crashed ({crash}) while closing")
            return
        restarts, exceeded = add_restart(
            restarts, trio.current_time(), reason, intensity=intensity, period=period
        )
        if exceeded:
            error = RestartIntensityExceeded(name, intensity, period, [r for (_, r) in restarts])
            emit(on_event, SupervisorEscalated(name, error))
            slot.closing = True
            slot.close_reason = (
                f"it crashed more than {intensity} times in {period:g}s (restart intensity exceeded)"
            )
            # Its values stay until their TTL: the client may re-open it, an operator may look at them.
            slot.keep_values = slot.initialized
            logger.warning("%s closed: %s", name, slot.close_reason)
            slot.fail_in_flight(_closed_message(slot, crash, getattr(deps, "resume", False)))
            return
        # Every request the dead incarnation held gets its final answer now, running or still queued.
        slot.fail_in_flight(_restarted_message(slot, crash))
        status = _Restarted(name, on_event)


def _never_started(crash: str) -> str:
    return (
        f"initialize failed: the session crashed ({crash}) before the handshake completed, so no "
        "session was started; send initialize again"
    )


def _restarted_message(slot: SessionSlot, crash: str) -> str:
    """Each text says what is true of this case, and what the client can do about it."""
    if not slot.initialized:
        return _never_started(crash)
    return (
        f"{slot.kind} crashed ({crash}) and is being restarted under the same id; this request did not "
        "complete (what it stored before the crash is kept): it may be sent again"
    )


def _closed_message(slot: SessionSlot, crash: str, resume: bool) -> str:
    if not slot.initialized:
        return _never_started(crash)
    return (
        f"{slot.kind} crashed ({crash}) and was closed: {slot.close_reason}. {slot.crash_closed_hint(resume)}"
    )
