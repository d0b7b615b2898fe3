"""``actor_child_spec``: an actor as a supervised child."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import trio
from mcpvisor.supervisors import ChildSpec, Restart

from ._ref import DEFAULT_MAILBOX_SIZE, ActorRef
from ._registry import Registry
from ._run import run_actor


class _StartActor:
    """A child's start function: a fresh behaviour per (re)start, run by ``run_actor``.

    A small slotted object rather than a closure (a closure and its cells cost several times more), and
    it returns ``run_actor``'s coroutine instead of awaiting it: no extra frame per supervised actor.
    """

    __slots__ = ("mailbox_size", "make_behaviour", "name", "registry")

    def __init__(
        self,
        make_behaviour: Callable[[], object],
        mailbox_size: int,
        name: str | None,
        registry: Registry | None,
    ) -> None:
        self.make_behaviour = make_behaviour
        self.mailbox_size = mailbox_size
        self.name = name
        self.registry = registry

    def __call__(
        self, *, task_status: trio.TaskStatus[ActorRef] = trio.TASK_STATUS_IGNORED
    ) -> Coroutine[Any, Any, None]:
        return run_actor(
            self.make_behaviour(),
            mailbox_size=self.mailbox_size,
            name=self.name,
            registry=self.registry,
            task_status=task_status,
        )

    def __repr__(self) -> str:
        return f"<start actor {getattr(self.make_behaviour, '__qualname__', self.make_behaviour)!r}>"


def actor_child_spec(
    id: str,
    make_behaviour: Callable[[], object],
    *,
    restart: Restart = Restart.PERMANENT,
    shutdown: float = 5.0,
    significant: bool = False,
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    name: str | None = None,
    registry: Registry | None = None,
) -> ChildSpec:
    """A ``ChildSpec`` that runs a *fresh* behaviour from ``make_behaviour()`` on every (re)start.

    The child's handle (what ``task_status.started`` gets, and ``which_children`` shows) is the
    ``ActorRef`` of the current incarnation. With ``name`` and ``registry`` each incarnation registers the
    name again, so ``registry.whereis(name)`` follows the actor across restarts. On the supervisor's stop
    request the actor runs ``terminate(SHUTDOWN)`` within ``shutdown`` seconds or is cancelled.
    """
    if mailbox_size < 1:
        raise ValueError(f"mailbox_size must be at least 1, got {mailbox_size}")
    start = _StartActor(make_behaviour, mailbox_size, name, registry)
    return ChildSpec(id, start, restart=restart, shutdown=shutdown, significant=significant)
