"""Actors: a trio task, a bounded mailbox and a behaviour; ``ActorRef`` is the only handle others hold.

See docs/actors.md. The public surface::

    ref = await spawn(nursery, Counter(), mailbox_size=100, name="counter", registry=registry)
    await ref.call(msg, timeout=5.0)   # handle_call's reply; CallTimeout / ActorExited
    await ref.cast(msg)                # waits for mailbox room (backpressure)
    ref.send_nowait(msg)               # MailboxFull when there is no room
    await ref.wait_exit()              # the exit reason
"""

from ._behaviour import NO_REPLY, Behaviour, StopActor
from ._child_spec import actor_child_spec
from ._errors import ActorError, ActorExited, CallTimeout, LinkedExit, MailboxFull, NameTaken
from ._links import current_actor, demonitor, link, monitor, trap_exits, unlink
from ._messages import Down, Exit, Monitor
from ._ref import DEFAULT_MAILBOX_SIZE, ActorRef, Caller
from ._registry import Registry
from ._run import run_actor, spawn

__all__ = [
    "DEFAULT_MAILBOX_SIZE",
    "NO_REPLY",
    "ActorError",
    "ActorExited",
    "ActorRef",
    "Behaviour",
    "CallTimeout",
    "Caller",
    "Down",
    "Exit",
    "LinkedExit",
    "MailboxFull",
    "Monitor",
    "NameTaken",
    "Registry",
    "StopActor",
    "actor_child_spec",
    "current_actor",
    "demonitor",
    "link",
    "monitor",
    "run_actor",
    "spawn",
    "trap_exits",
    "unlink",
]
