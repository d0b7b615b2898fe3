"""What an actor does is a behaviour: a plain object with async callbacks.

A behaviour may be any class; the runtime looks the callbacks up by name and supplies a default for any
it lacks, so a counter needs only ``handle_call``. Subclassing ``Behaviour`` is optional: it only spells
the defaults out (and gives an editor something to complete).

Callbacks, all ``async`` and all run in the actor's own task, one message at a time:

- ``init()``: before ``start`` returns; raising fails the start (the actor never runs).
- ``handle_call(msg, caller)``: returns the reply; or returns ``NO_REPLY`` and later calls
  ``caller.reply(value)`` (OTP's ``{noreply, State}`` + ``gen_server:reply``).
- ``handle_cast(msg)``: a message sent with ``cast`` / ``send_nowait``; no reply.
- ``handle_info(msg)``: runtime messages: ``Down`` (monitors) and ``Exit`` (links, when trapping exits).
- ``terminate(reason)``: the last callback, with the exit reason; not run after ``init`` failed or when the
  actor is cancelled from outside (a brutal kill).

A callback stops the actor by raising ``StopActor(reason)``; raising anything else is a crash whose reason
is that exception.
"""

from __future__ import annotations

import enum
from typing import Any, Final

from mcpvisor.supervisors import NORMAL, ExitReason

from ._ref import Caller


class _NoReply(enum.Enum):
    NO_REPLY = "NO_REPLY"

    def __repr__(self) -> str:
        return "NO_REPLY"


#: Returned by ``handle_call`` to reply later with ``caller.reply(value)``.
NO_REPLY: Final = _NoReply.NO_REPLY

_NOTHING: Final = object()


class StopActor(Exception):
    """Raised by a callback to stop its actor with ``reason`` (``NORMAL``, ``SHUTDOWN`` or an exception).

    ``reply``, when given inside ``handle_call``, is sent to the caller before the actor stops
    (OTP's ``{stop, Reason, Reply, State}``); otherwise the caller gets ``ActorExited(reason)``.
    """

    def __init__(self, reason: ExitReason = NORMAL, *, reply: Any = _NOTHING) -> None:
        self.reason = reason
        self.reply = reply
        super().__init__(reason)

    @property
    def has_reply(self) -> bool:
        return self.reply is not _NOTHING


class Behaviour:
    """Optional base class spelling out the default callbacks (each does nothing)."""

    async def init(self) -> None:
        """Set up state before the actor accepts messages."""

    async def handle_call(self, msg: Any, caller: Caller) -> Any:
        """Answer a ``call``. The default refuses: a behaviour that takes calls must define this."""
        raise NotImplementedError(f"{type(self).__name__} does not handle calls (got {msg!r})")

    async def handle_cast(self, msg: Any) -> None:
        """Handle a ``cast``; the default ignores it."""

    async def handle_info(self, msg: Any) -> None:
        """Handle a runtime message (``Down``, ``Exit``); the default ignores it."""

    async def terminate(self, reason: ExitReason) -> None:
        """Clean up; ``reason`` is why the actor stops."""
