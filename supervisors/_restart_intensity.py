"""Restart intensity as ``supervisor.erl``'s ``add_restart``: the one rule, as a pure function.

A supervisor keeps the times of its recent restarts. On a restart it drops those older than ``period``
seconds (one exactly ``period`` old is kept, as OTP keeps it), adds now, and gives up when more than
``intensity`` remain. The supervisor and the runtime's session keeper (which applies the same rule
without a supervisor per session, see runtime/tree/_session_keeper.py) both call this; the reference
model in ``supervisors/testing`` keeps its own implementation on purpose, so that a mistake here shows
up as a disagreement there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import attrs

R = TypeVar("R")


@attrs.frozen
class SupervisorDefaults:
    """The defaults every supervisor (and the session keeper) starts from: OTP's 3 restarts in 5 s."""

    intensity: int = 3
    period: float = 5.0


DEFAULTS = SupervisorDefaults()


def add_restart(
    restarts: Sequence[tuple[float, R]], now: float, reason: R, *, intensity: int, period: float
) -> tuple[list[tuple[float, R]], bool]:
    """The restarts to keep (``(now, reason)`` last) and whether they exceed ``intensity``."""
    kept = [(t, r) for (t, r) in restarts if t >= now - period]
    kept.append((now, reason))
    return kept, len(kept) > intensity
