"""``ActorRef``: the one handle others hold on an actor, and the actor's mailbox behind it.

The mailbox is a plain list plus direct task wake-ups, not a memory channel: a channel per reply
was measured halving call throughput (docs/design.md, "Mailboxes"). A caller appends a ``Caller``
record and parks with ``wait_task_rescheduled``; the actor pops it, runs ``handle_call`` and
reschedules the caller with the reply. The reply travels to that one parked task, so a reply that
comes after its call timed out has nowhere to go and is dropped: it can never reach the next caller.

Capacity bounds what *users* put in (``call``, ``cast``, ``send_nowait``); the runtime's own messages
(``Down``, ``Exit``) always get in, as OTP never loses a monitor's message.
"""

from __future__ import annotations

import contextvars
import math
from typing import TYPE_CHECKING, Any, Final

import outcome
import trio
from mcpvisor.supervisors import NORMAL, SHUTDOWN, ExitReason
from trio.lowlevel import Abort, ParkingLot, Task, current_task, reschedule, wait_task_rescheduled

from ._call_timer import CallTimer, call_timer
from ._errors import ActorExited, CallTimeout, LinkedExit, MailboxFull
from ._messages import Down, Exit, Monitor

if TYPE_CHECKING:
    from ._registry import Registry

#: The mailbox size an actor gets when its starter does not choose one.
DEFAULT_MAILBOX_SIZE: Final = 1024

_current_actor: contextvars.ContextVar[ActorRef] = contextvars.ContextVar("mcpvisor_actor")


class Caller:
    """The pending ``call`` a ``handle_call`` answers; keep it and ``reply`` later to defer the answer."""

    __slots__ = ("_actor", "_deferred", "_task", "_timeout", "_timer", "msg")

    def __init__(self, actor: ActorRef, msg: Any, task: Task) -> None:
        self._actor = actor
        self.msg = msg
        self._task: Task | None = task
        self._deferred = False
        self._timer: CallTimer | None = None
        self._timeout = 0.0

    def _settled(self) -> None:
        if self._deferred:
            self._actor._forget_deferred(self)
        if self._timer is not None:
            self._timer.discard(self, self._timeout)

    @property
    def waiting(self) -> bool:
        """False once answered, or once the caller gave up (timeout, cancellation, actor exit)."""
        return self._task is not None

    def reply(self, value: Any) -> None:
        """Answer the call. A second reply, or one to a caller that gave up, is dropped."""
        task = self._task
        if task is None:
            return
        self._task = None
        self._settled()
        reschedule(task, outcome.Value(value))

    def _fail(self, reason: ExitReason) -> None:
        task = self._task
        if task is None:
            return
        self._task = None
        self._settled()
        reschedule(task, outcome.Error(ActorExited(self._actor, reason)))

    def _expire(self, timeout: float) -> None:
        """Called by the timer (which has already forgotten this call)."""
        task = self._task
        if task is None:
            return
        self._task = None
        self._timer = None
        self._settled()
        reschedule(task, outcome.Error(CallTimeout(self._actor, timeout)))

    def _abort(self, _raise_cancel: object) -> Abort:
        # The caller timed out or was cancelled: forget it, so a late reply goes nowhere.
        self._task = None
        self._settled()
        return Abort.SUCCEEDED


class _Info:
    """Mailbox envelope for ``handle_info`` messages (casts travel bare, calls as ``Caller``)."""

    __slots__ = ("msg",)

    def __init__(self, msg: Any) -> None:
        self.msg = msg


class ActorRef:
    """A handle on one actor: send it messages, link or monitor it, wait for its exit.

    Compared by identity. Holding a ref does not keep the actor running; using the ref of an actor that
    exited raises ``ActorExited`` with the reason it exited.
    """

    __slots__ = (
        "__weakref__",
        "_capacity",
        "_deferred",
        "_done",
        "_exit_event",
        "_kill_scope",
        "_label",
        "_links",
        "_monitored_by",
        "_monitoring",
        "_names",
        "_parked",
        "_queue",
        "_reason",
        "_room",
        "_signal",
        "_task",
        "trap_exits",
    )

    def __init__(self, label: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox_size must be at least 1, got {capacity}")
        self._label = label
        self._capacity = capacity
        # A list, not a deque: an empty deque costs 760 bytes, an empty list 56, and an idle actor's
        # footprint is what 10,000 sessions multiply. Mailboxes are short, so ``pop(0)`` is cheap.
        self._queue: list[Any] = []
        self._task: Task | None = None
        self._parked = False
        self._reason: ExitReason | None = None  # None while running
        self._done = False
        self._signal: ExitReason | None = None  # a pending stop (or kill) request
        self._kill_scope: trio.CancelScope | None = None
        self._room: ParkingLot | None = None
        self._deferred: set[Caller] | None = None
        self._names: list[tuple[Registry, str]] | None = None
        self._links: set[ActorRef] | None = None
        self._monitored_by: dict[Monitor, None] | None = None
        self._monitoring: dict[Monitor, None] | None = None
        self._exit_event: trio.Event | None = None
        #: When True, an exiting linked actor sends ``Exit`` to ``handle_info`` instead of stopping this one.
        self.trap_exits = False

    def __repr__(self) -> str:
        state = "running" if self._reason is None else f"exited {self._reason!r}"
        return f"<ActorRef {self._label} {state}>"

    @property
    def label(self) -> str:
        """The actor's name, or its behaviour's class name and a number when it has no name."""
        return self._label

    @property
    def alive(self) -> bool:
        return self._reason is None

    @property
    def exit_reason(self) -> ExitReason | None:
        """None while the actor runs; then ``NORMAL``, ``SHUTDOWN`` or the exception it crashed with."""
        return self._reason if self._done else None

    @property
    def mailbox_size(self) -> int:
        return self._capacity

    @property
    def idle(self) -> bool:
        """Parked on an empty mailbox and not woken: running no callback, with nothing to run before a
        message sent now (no stop request either: that wakes it too)."""
        return self._parked and not self._queue

    # ---- sending ---------------------------------------------------------------------------------------

    async def call(self, msg: Any, timeout: float | None = 5.0) -> Any:
        """Send ``msg`` to ``handle_call`` and wait for the reply.

        Waits for mailbox room first (within the same timeout). Raises ``CallTimeout`` after ``timeout``
        seconds (``None`` or ``math.inf``: wait forever), ``ActorExited`` if the actor is not running or
        exits before it replies (a crash in ``handle_call`` included), and whatever ``handle_call`` raised
        is *not* re-raised here: the crash is the actor's, the caller learns it as the exit reason.
        """
        if self._reason is not None:
            await trio.lowlevel.checkpoint()
            raise ActorExited(self, self._reason)
        task = current_task()
        if task is self._task:
            raise RuntimeError(f"actor {self._label} called itself: it would wait for its own reply forever")
        caller = Caller(self, msg, task)
        queue = self._queue
        if len(queue) >= self._capacity:
            # Rare path: a full mailbox; waiting for room counts against the same timeout.
            if timeout is None or timeout == math.inf:
                await self._wait_room()
            else:
                start = trio.current_time()
                with trio.move_on_after(timeout):
                    await self._wait_room()
                remaining = timeout - (trio.current_time() - start)
                if len(queue) >= self._capacity or remaining <= 0:
                    raise CallTimeout(self, timeout)
                timeout = remaining
        if timeout is not None and timeout != math.inf:
            if timeout < 0 or math.isnan(timeout):
                raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
            timer = caller._timer = call_timer()
            caller._timeout = timeout
            timer.add(caller, timeout)
        queue.append(caller)
        self._wake()
        return await wait_task_rescheduled(caller._abort)

    async def cast(self, msg: Any) -> None:
        """Send ``msg`` to ``handle_cast``; when the mailbox is full, wait for room (backpressure)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._reason is not None:
            raise ActorExited(self, self._reason)
        if len(self._queue) >= self._capacity:
            await self._wait_room()
        self._queue.append(msg)
        self._wake()
        await trio.lowlevel.cancel_shielded_checkpoint()

    def send_nowait(self, msg: Any) -> None:
        """Send ``msg`` to ``handle_cast`` without waiting; ``MailboxFull`` when there is no room."""
        if self._reason is not None:
            raise ActorExited(self, self._reason)
        if len(self._queue) >= self._capacity:
            raise MailboxFull(self, self._capacity)
        self._queue.append(msg)
        self._wake()

    async def _wait_room(self) -> None:
        room = self._room
        if room is None:
            room = self._room = ParkingLot()
        while len(self._queue) >= self._capacity:
            await room.park()
            if self._reason is not None:
                raise ActorExited(self, self._reason)

    # ---- stopping and waiting -------------------------------------------------------------------------

    async def stop(self, reason: ExitReason = NORMAL, timeout: float | None = None) -> ExitReason:
        """Ask the actor to stop with ``reason`` after its current message, and wait until it has exited.

        Queued messages are not handled: their callers get ``ActorExited``. Returns the exit reason (which
        is ``reason`` unless ``terminate`` crashed). A stop with an exception as reason makes the actor's
        task raise it, as a crash does. Raises ``CallTimeout`` if it takes longer than ``timeout``.
        """
        if current_task() is self._task:
            raise RuntimeError(f"actor {self._label} cannot wait for its own exit: raise StopActor instead")
        self.request_stop(reason)
        if timeout is None:
            return await self.wait_exit()
        with trio.move_on_after(timeout):
            return await self.wait_exit()
        raise CallTimeout(self, timeout)

    def request_stop(self, reason: ExitReason = NORMAL) -> None:
        """Ask the actor to stop with ``reason`` after its current message, without waiting."""
        if self._reason is None and self._signal is None:
            self._signal = reason
            self._wake()

    async def wait_exit(self) -> ExitReason:
        """Wait until the actor has exited (terminate done, monitors told) and return its reason."""
        if self._done:
            await trio.lowlevel.checkpoint()
        else:
            event = self._exit_event
            if event is None:
                event = self._exit_event = trio.Event()
            await event.wait()
        assert self._reason is not None
        return self._reason

    # ---- the actor's side (used by the run loop, links, monitors and registries) ----------------------

    def _wake(self) -> None:
        if self._parked:
            self._parked = False
            reschedule(self._task)  # type: ignore[arg-type]

    def _abort_park(self, _raise_cancel: object) -> Abort:
        self._parked = False
        return Abort.SUCCEEDED

    def _forget_deferred(self, caller: Caller) -> None:
        if self._deferred is not None:
            self._deferred.discard(caller)

    def _defer(self, caller: Caller) -> None:
        caller._deferred = True
        if self._deferred is None:
            self._deferred = set()
        self._deferred.add(caller)

    def _deliver_info(self, msg: Any) -> None:
        """Runtime messages skip the capacity check: a monitor's ``Down`` is never lost."""
        if self._reason is None:
            self._queue.append(_Info(msg))
            self._wake()

    def _kill(self, reason: ExitReason) -> None:
        """Stop now, interrupting the current callback (a linked actor's exit signal)."""
        if self._reason is not None:
            return
        self._signal = reason
        if self._kill_scope is not None:
            self._kill_scope.cancel()
        else:
            self._wake()

    def _exit_signal(self, peer: ActorRef, reason: ExitReason) -> None:
        if self._reason is not None:
            return
        if self.trap_exits:
            self._deliver_info(Exit(peer, reason))
        elif reason is SHUTDOWN:
            self._kill(SHUTDOWN)
        elif reason is not NORMAL:
            crash = LinkedExit(peer, reason)
            if isinstance(reason, BaseException):
                crash.__cause__ = reason
            self._kill(crash)

    def _begin_exit(self, reason: ExitReason) -> None:
        """From now on every send fails fast with ``ActorExited``, even while ``terminate`` runs."""
        self._reason = reason
        self._kill_scope = None

    def _finish(self, reason: ExitReason) -> None:
        """Tell everyone who waits on this actor that it exited; runs once, synchronously."""
        self._reason = reason
        self._done = True
        pending = self._queue
        self._queue = []
        for item in pending:
            if type(item) is Caller:
                item._fail(reason)
        if self._deferred:
            for caller in list(self._deferred):
                caller._fail(reason)
            self._deferred = None
        if self._room is not None:
            self._room.unpark_all()
        if self._names:
            for registry, name in self._names:
                registry._forget(name, self)
            self._names = None
        if self._monitoring:
            for mon in self._monitoring:
                if mon.target._monitored_by is not None:
                    mon.target._monitored_by.pop(mon, None)
            self._monitoring = None
        if self._monitored_by:
            monitors, self._monitored_by = self._monitored_by, None
            for mon in monitors:
                if mon.watcher._monitoring is not None:
                    mon.watcher._monitoring.pop(mon, None)
                mon.watcher._deliver_info(Down(self, reason, mon))
        if self._links:
            links, self._links = self._links, None
            for peer in links:
                if peer._links is not None:
                    peer._links.discard(self)
                peer._exit_signal(self, reason)
        if self._exit_event is not None:
            self._exit_event.set()
