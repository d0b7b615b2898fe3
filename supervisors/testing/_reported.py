"""Translate what a real supervisor reports into the model's vocabulary.

The state machine compares two observations with the model: what happened to the children (seen by
the wrappers) and what the supervisor *says* happened (its ``on_event`` events and ``which_children``
rows). This module turns the second into model events and ``ChildEntry`` rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._exit import NORMAL, SHUTDOWN
from ._model import AutoShutdownTriggered, ChildEntry, Escalated, Event, Exited, ExitKind, Started


def _child_id(event: object) -> str:
    for name in ("child_id", "id"):
        value = getattr(event, name, None)
        if isinstance(value, str):
            return value
    raise AssertionError(f"event {event!r} names no child")


def _kind(reason: object) -> ExitKind:
    if reason is NORMAL:
        return ExitKind.NORMAL
    if reason is SHUTDOWN:
        return ExitKind.SHUTDOWN
    if isinstance(reason, BaseException):
        return ExitKind.CRASH
    raise AssertionError(f"unknown exit reason {reason!r}")


def reported_as_model_events(reported: Iterable[object]) -> list[Event]:
    """The supervisor's own events as model events; events the model has no word for are left out."""
    out: list[Event] = []
    seen: set[str] = set()
    for event in reported:
        name = type(event).__name__
        translated: Event | None = None
        if name in ("ChildStarted", "ChildRestarted"):
            child = _child_id(event)
            translated = Started(child, restart=child in seen or name == "ChildRestarted")
            seen.add(child)
            if out and out[-1] == translated:
                continue  # a restart reported both as started and restarted is one start
        elif name == "ChildExited":
            translated = Exited(_child_id(event), _kind(getattr(event, "reason", None)))
        elif name == "SupervisorEscalated":
            translated = Escalated()
        elif "AutoShutdown" in name:
            translated = AutoShutdownTriggered()
        if translated is not None:
            out.append(translated)
    return out


def which_children_entries(rows: Iterable[Any]) -> list[ChildEntry]:
    """``which_children()`` rows as model rows: the child's id and whether it runs."""
    entries = []
    for row in rows:
        if isinstance(row, tuple):
            entries.append(ChildEntry(row[0], bool(row[1])))
        else:
            entries.append(ChildEntry(_child_id(row), _is_running(row)))
    return entries


def _is_running(row: object) -> bool:
    for name in ("running", "alive", "is_running"):
        value = getattr(row, name, None)
        if isinstance(value, bool):
            return value
    return getattr(row, "handle", None) is not None
