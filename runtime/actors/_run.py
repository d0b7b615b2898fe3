"""Running an actor: ``run_actor`` (the trio ``task_status`` entry point) and ``spawn``.

One actor is one trio task and nothing else. An idle actor is a parked task with one coroutine frame, a
short list and a small ``ActorRef``: ``run_actor`` is a plain function returning that single coroutine,
and the loop parks inline, because every extra frame or object is multiplied by the ten thousand
sessions a server may hold. Under a supervisor the stop request arrives as ``request_stop(SHUTDOWN)``
(``ChildContext._notify_on_stop``), so the same park serves it, again without a second task or event.

How an actor ends, and what its task does then (what a supervisor sees):

================================  =====================  ==================================
cause                             exit reason            task
================================  =====================  ==================================
``StopActor()`` / ``stop()``      ``NORMAL``             returns
supervisor's stop request         ``SHUTDOWN``           returns
``StopActor(exc)``                ``exc``                raises ``exc``
a callback raised ``exc``         ``exc``                raises ``exc``
linked actor crashed (no trap)    ``LinkedExit``         raises ``LinkedExit``
cancelled from outside            ``SHUTDOWN``           ``Cancelled`` propagates; no terminate
================================  =====================  ==================================
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Coroutine
from typing import Any, Final

import trio
from mcpvisor.supervisors import NORMAL, SHUTDOWN, ExitReason, current_child
from trio.lowlevel import checkpoint, current_task, wait_task_rescheduled

from ._behaviour import NO_REPLY, StopActor
from ._ref import DEFAULT_MAILBOX_SIZE, ActorRef, Caller, _current_actor, _Info
from ._registry import Registry

#: Messages handled back to back before the actor yields to other tasks (trio fairness).
_BATCH: Final = 32

_numbers = itertools.count(1)


async def _no_init() -> None:
    return None


async def _ignore(_msg: Any) -> None:
    return None


def _refuse_calls(behaviour: object) -> Any:
    async def handle_call(msg: Any, _caller: Caller) -> Any:
        raise NotImplementedError(f"{type(behaviour).__name__} has no handle_call (got {msg!r})")

    return handle_call


def run_actor(
    behaviour: object,
    *,
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    name: str | None = None,
    registry: Registry | None = None,
    task_status: trio.TaskStatus[ActorRef] = trio.TASK_STATUS_IGNORED,
) -> Coroutine[Any, Any, None]:
    """Run ``behaviour`` as an actor in the calling task until it exits (``await run_actor(...)``).

    Use it with ``nursery.start`` (``ref = await nursery.start(functools.partial(run_actor, b))``), or
    ``spawn``, or as a supervised child via ``actor_child_spec``. ``name`` labels the actor in errors;
    with a ``registry`` the name is also registered there (before ``init`` runs, so a taken name fails
    the start with ``NameTaken``) and forgotten when the actor exits. ``init`` runs before the start
    returns; if it raises, the start fails with that exception.

    Under a supervisor (``current_child()`` is set) the actor honours the stop request: it finishes its
    current message, runs ``terminate(SHUTDOWN)`` and returns.

    A plain function returning the actor's coroutine, not an ``async def`` around it: one coroutine frame
    per idle actor instead of two.
    """
    label = name if name is not None else f"{type(behaviour).__name__}#{next(_numbers)}"
    ref = ActorRef(label, mailbox_size)
    child = current_child()
    if child is not None:
        # The supervisor's stop request becomes ``ref.request_stop(SHUTDOWN)``: the parked actor is
        # woken like any mailbox delivery, with no stop event or watcher task per actor.
        child._notify_on_stop(ref)
    return _actor(ref, behaviour, name, registry, task_status)


async def _dispatch(ref: ActorRef, item: Any, handlers: tuple[Any, Any, Any]) -> StopActor | None:
    """Run the callback for one message; a ``StopActor`` it raised is returned, anything else raises."""
    kind = type(item)
    try:
        if kind is Caller:
            reply = await handlers[0](item.msg, item)
            if reply is NO_REPLY:
                if item._task is not None:
                    ref._defer(item)
            else:
                item.reply(reply)
        elif kind is _Info:
            await handlers[2](item.msg)
        else:
            await handlers[1](item)
    except StopActor as stop_actor:
        if kind is Caller and stop_actor.has_reply:
            item.reply(stop_actor.reply)
        return stop_actor
    return None


async def _actor(
    ref: ActorRef,
    behaviour: object,
    name: str | None,
    registry: Registry | None,
    task_status: trio.TaskStatus[ActorRef],
) -> None:
    ref._task = current_task()
    if registry is not None and name is not None:
        registry.register(name, ref)
    _current_actor.set(ref)
    init = getattr(behaviour, "init", None) or _no_init
    try:
        await init()
    except BaseException as exc:
        reason: ExitReason = SHUTDOWN if isinstance(exc, trio.Cancelled) else exc
        ref._begin_exit(reason)
        ref._finish(reason)
        raise
    task_status.started(ref)
    # Drop the start machinery: task_status holds trio's temporary start nursery, ~600 bytes a task.
    del task_status

    handlers = (
        getattr(behaviour, "handle_call", None) or _refuse_calls(behaviour),
        getattr(behaviour, "handle_cast", None) or _ignore,
        getattr(behaviour, "handle_info", None) or _ignore,
    )
    reason = NORMAL
    current: Caller | None = None
    batch = 0
    try:
        while True:
            signal = ref._signal
            if signal is not None:
                reason = signal
                break
            queue = ref._queue
            if not queue:
                # Park until a sender or a stop request (the supervisor's included) wakes us.
                batch = 0
                ref._parked = True
                try:
                    await wait_task_rescheduled(ref._abort_park)
                finally:
                    ref._parked = False
                continue
            item = queue.pop(0)
            room = ref._room
            if room is not None and room:
                room.unpark()
            current = item if type(item) is Caller else None
            if ref._links:
                # Linked: a peer's crash must be able to interrupt this callback (OTP's exit signal).
                with trio.CancelScope() as scope:
                    ref._kill_scope = scope
                    stopped = await _dispatch(ref, item, handlers)
                ref._kill_scope = None
                if scope.cancelled_caught:
                    assert ref._signal is not None
                    reason = ref._signal
                    break
            else:
                stopped = await _dispatch(ref, item, handlers)
            current = None
            if stopped is not None:
                reason = stopped.reason
                break
            batch += 1
            if batch >= _BATCH:
                batch = 0
                await checkpoint()
    except trio.Cancelled:
        # Cancelled from outside (a supervisor's brutal kill, a closing nursery): no terminate.
        ref._begin_exit(SHUTDOWN)
        if current is not None:
            current._fail(SHUTDOWN)
        ref._finish(SHUTDOWN)
        raise
    except BaseException as exc:
        reason = exc
    ref._begin_exit(reason)
    if current is not None:
        current._fail(reason)
    terminate = getattr(behaviour, "terminate", None)
    try:
        if terminate is not None:
            await terminate(reason)
    except BaseException as exc:
        if not isinstance(exc, trio.Cancelled):
            reason = exc  # OTP: a crash in terminate becomes the exit reason
        ref._finish(SHUTDOWN if isinstance(exc, trio.Cancelled) else reason)
        raise
    ref._finish(reason)
    if reason is NORMAL or reason is SHUTDOWN:
        return
    raise reason


async def spawn(
    nursery: trio.Nursery,
    behaviour: object,
    *,
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    name: str | None = None,
    registry: Registry | None = None,
) -> ActorRef:
    """Start ``behaviour`` as an actor in ``nursery`` and return its ref once ``init`` has run.

    An unsupervised actor is an ordinary trio task: if it crashes, the exception propagates into
    ``nursery`` like any task's. Put actors that should be restarted under a supervisor instead.
    """
    ref: ActorRef = await nursery.start(
        functools.partial(run_actor, behaviour, mailbox_size=mailbox_size, name=name, registry=registry)
    )
    return ref
