"""The commands a supervision test applies to a tree, as plain records that print as code.

The state machine turns every step into one of these and keeps the list, so a failing example is
reported as ``Machine.replay(tree, [Crash(child='c0'), Advance(seconds=2.5), ...])``: a line that can
be pasted into a test to run the same steps again, without hypothesis.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Crash:
    """The running child ``child`` raises ``InjectedCrash``."""

    child: str


@attrs.frozen
class NormalExit:
    """The running child ``child`` returns by itself (a ``NORMAL`` exit)."""

    child: str


@attrs.frozen
class Advance:
    """The mock clock moves ``seconds`` forward; the tree's own timers fire."""

    seconds: float


@attrs.frozen
class TerminateChild:
    """``await handle.terminate_child(child)``."""

    child: str


@attrs.frozen
class RestartChild:
    """``await handle.restart_child(child)``."""

    child: str


@attrs.frozen
class DeleteChild:
    """``await handle.delete_child(child)``."""

    child: str


@attrs.frozen
class StartChild:
    """``await handle.start_child(spec)`` with the tree's spec of that id (after it was deleted)."""

    child: str


Command = Crash | NormalExit | Advance | TerminateChild | RestartChild | DeleteChild | StartChild
ApiCall = TerminateChild | RestartChild | DeleteChild | StartChild

__all__ = [
    "Advance",
    "ApiCall",
    "Command",
    "Crash",
    "DeleteChild",
    "NormalExit",
    "RestartChild",
    "StartChild",
    "TerminateChild",
]
