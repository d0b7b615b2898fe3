"""The kit's clocks: a fake wall clock for backends that take a ``clock``, and real time for the rest."""

from __future__ import annotations

import time
from typing import Final

import attrs

#: Where the fake clock starts: a realistic wall-clock value that is exact in binary floating point.
FAKE_EPOCH: Final = 1_700_000_000.0


class FakeClock:
    """A wall clock (seconds) that only moves when the kit says so; call it like ``time.time``.

    The kit advances it in multiples of 0.5 s, so every expiry time it computes is exact and the
    boundary (a value is expired when ``now >= expires_at``) is tested exactly.
    """

    def __init__(self, start: float = FAKE_EPOCH) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.now += seconds


@attrs.frozen
class Window:
    """When, on the backend's clock, an operation may have run: ``[start, end]``.

    With the fake clock ``start == end``. In real-time mode it is the wall-clock interval around the
    call, widened by a small margin, and the kit accepts either answer for anything whose expiry falls
    inside it.
    """

    start: float
    end: float


ALIVE: Final = "alive"
DEAD: Final = "dead"
MAYBE: Final = "maybe"


def liveness(expires_lo: float | None, expires_hi: float | None, window: Window) -> str:
    """Whether something that expires somewhere in ``[lo, hi]`` is visible during ``window``."""
    if expires_lo is None or expires_hi is None:
        return ALIVE
    if window.end < expires_lo:
        return ALIVE
    if window.start >= expires_hi:
        return DEAD
    return MAYBE


def wall_window(start: float, margin: float) -> Window:
    return Window(start - margin, time.time() + margin)
