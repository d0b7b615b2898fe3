"""Errors an actor's users meet; each message names the actor and says what to do instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcpvisor.supervisors import ExitReason

if TYPE_CHECKING:
    from ._ref import ActorRef


class ActorError(Exception):
    """Base class of every actor error."""


class ActorExited(ActorError):
    """The actor is not running (OTP's ``noproc``), or exited before it answered this call.

    ``reason`` is its exit reason: ``NORMAL``, ``SHUTDOWN`` or the exception it crashed with, so a
    caller can tell an orderly stop from a crash.
    """

    def __init__(self, actor: ActorRef, reason: ExitReason) -> None:
        self.actor = actor
        self.reason = reason
        super().__init__(f"actor {actor.label} has exited (reason: {reason!r})")


class CallTimeout(ActorError):
    """No reply within the call's timeout. The request may still be handled; its late reply is dropped."""

    def __init__(self, actor: ActorRef, timeout: float) -> None:
        self.actor = actor
        self.timeout = timeout
        super().__init__(
            f"call to actor {actor.label} got no reply within {timeout}s; the request may still run, "
            "and its reply will be dropped (raise the timeout, or make the handler reply sooner)"
        )


class MailboxFull(ActorError):
    """``send_nowait`` found the bounded mailbox full: back off, or use ``await cast()`` to wait for room."""

    def __init__(self, actor: ActorRef, capacity: int) -> None:
        self.actor = actor
        self.capacity = capacity
        super().__init__(
            f"mailbox of actor {actor.label} is full ({capacity} messages); use `await ref.cast(msg)` "
            "to wait for room, or give the actor a larger mailbox_size"
        )


class NameTaken(ActorError):
    """``Registry.register`` with a name a live actor already holds."""

    def __init__(self, name: str, holder: ActorRef) -> None:
        self.name = name
        self.holder = holder
        super().__init__(
            f"name {name!r} is already registered to the running actor {holder.label}; "
            "unregister it or stop that actor first"
        )


class LinkedExit(ActorError):
    """Why an actor died when an actor linked to it exited abnormally and it did not trap exits.

    The linked actor's own reason is ``reason`` (and ``__cause__`` when it is an exception).
    """

    def __init__(self, peer: ActorRef, reason: ExitReason) -> None:
        self.peer = peer
        self.reason = reason
        super().__init__(f"linked actor {peer.label} exited with {reason!r}")
