"""The supervisor: OTP's ``supervisor`` behaviour on trio.

One running supervisor is a ``_Run``: a nursery holding one task per child, a main loop that reacts to
child exits one at a time (restart, escalate, auto-shutdown), and a lock that serialises the main loop
with the handle's operations, the way a gen_server serialises its messages.

The children's nursery is shielded from cancellation from outside: a cancelled enclosing scope is the
supervisor being terminated, and OTP terminates a supervisor's children in order, each asked first.
A watcher task outside the shield turns the cancellation into that orderly stop, then the Cancelled
goes on. The shield never outlives the supervisor: every route out of ``run`` stops every child first.

Length: ``_Run`` (start order, exits, restarts, escalation, stop order) is one state machine serialised
by one lock, and the handle and the two public specs are thin over it; child specs, events, the
intensity window and the child context live in their own modules.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Hashable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ._child_context import ChildContext, current_child, enter_child_context
from ._errors import (
    AmbiguousChildId,
    ChildAlreadyPresent,
    ChildNotFound,
    ChildStartError,
    ChildStillRunning,
    Ignore,
    MaxChildrenReached,
    RestartIntensityExceeded,
    SupervisorNotRunning,
)
from ._events import (
    ChildExited,
    ChildIgnored,
    ChildRestarted,
    ChildStarted,
    ChildStartFailed,
    EventHook,
    SupervisorAutoShutdown,
    SupervisorEscalated,
    SupervisorStopped,
    emit,
)
from ._exit import NORMAL, SHUTDOWN, ExitReason, is_abnormal
from ._lone_error import lone_error
from ._restart_intensity import DEFAULTS, add_restart
from ._spec import AutoShutdown, ChildSpec, ChildType, Restart, Strategy, to_auto_shutdown, to_strategy


@attrs.frozen
class ChildRecord:
    """One row of ``which_children()``: OTP's ``{Id, Child, Type, Modules}`` without modules."""

    id: str
    handle: Any
    type: ChildType
    restart: Restart
    running: bool


@attrs.frozen
class ChildCounts:
    """``count_children()``: OTP's specs / active / supervisors / workers."""

    specs: int
    active: int
    supervisors: int
    workers: int


_STARTING, _RUNNING, _EXITED = 0, 1, 2


class _Child(ChildContext):
    """One incarnation of a child: a new one per (re)start, so stale exit notices are recognisable.

    It is also the child's ``ChildContext`` and the ``task_status`` its start function gets, so a child
    costs one small object besides its task; the exit event exists only while someone waits for it.
    """

    __slots__ = ("_task_status", "handle", "key", "reason", "scope", "settled", "spec", "state", "waiter")

    def __init__(self, spec: ChildSpec, key: Hashable) -> None:
        super().__init__(spec.id)
        self.spec = spec
        #: its place among the supervisor's children: the spec id in a static supervisor; in a dynamic
        #: one a number, since one spec (one id) may be started many times (OTP keys those by pid)
        self.key = key
        self.handle: Any = None
        self.scope: trio.CancelScope | None = None
        self.state = _STARTING
        self.waiter: trio.Event | None = None  # made by the first task that waits for the exit
        self.reason: ExitReason = NORMAL
        self.settled = False  # its exit has been (or is being) dealt with
        self._task_status: trio.TaskStatus[Any] | None = None

    @property
    def running(self) -> bool:
        return self.state == _RUNNING

    def started(self, value: Any = None) -> None:
        """The child's ``task_status.started``: forward, then let go of trio's start machinery (its
        temporary nursery would otherwise live, ~1 KB, as long as the child)."""
        status = self._task_status
        if status is None:
            raise RuntimeError(f"child {self.spec.id!r} called task_status.started() twice")
        self._task_status = None
        self.state = _RUNNING
        status.started(value)

    async def wait_exited(self) -> None:
        if self.state == _EXITED:
            return
        if self.waiter is None:
            self.waiter = trio.Event()
        await self.waiter.wait()


_STOP = object()


class _TryAgain:
    """supervisor.erl's ``try_again_restart``: a restart whose start failed is retried through the
    supervisor's own queue, so the requests that arrived meanwhile (``terminate_child``, a stop) are
    handled in between instead of waiting behind a restart loop."""

    __slots__ = ("key", "reason")

    def __init__(self, key: Hashable, reason: BaseException | None) -> None:
        self.key = key
        self.reason = reason


#: what an ignoring child's task hands ``nursery.start`` instead of a handle
_IGNORED = object()


class _Serial:
    """The supervisor's lock, taken without yielding when free.

    ``async with trio.Lock()`` always yields, even uncontended; the main loop and every handle
    operation already yield (on the exit queue, in ``nursery.start``), so the extra pass through the
    scheduler only cost a spawn+exit cycle about a third of its speed.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        self._lock.release()


class _Run:
    """One running supervisor instance (a restarted supervisor is a fresh ``_Run``)."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        strategy: Strategy,
        intensity: int,
        period: float,
        auto_shutdown: AutoShutdown,
        name: str,
        on_event: EventHook | None,
        dynamic: bool = False,
        max_children: int | None = None,
    ) -> None:
        self.specs = list(children)
        self.strategy = strategy
        self.intensity = intensity
        self.period = period
        self.auto_shutdown = auto_shutdown
        self.name = name
        self.on_event = on_event
        self.dynamic = dynamic
        self.max_children = max_children
        self.children: dict[Hashable, _Child] = {}
        # dynamic only: id -> key, or the list of keys when several children share the id; and
        # id(handle) -> key, so a handle (OTP's pid) finds its child without a scan
        self.by_id: dict[str, Hashable | list[Hashable]] = {}
        self.by_handle: dict[int, Hashable] = {}
        self._keys = itertools.count()
        self.active = 0
        self.restarts: list[tuple[float, object]] = []
        #: keys whose restart failed and waits for its ``_TryAgain`` (OTP: pid ``{restarting, Old}``)
        self.restarting: set[Hashable] = set()
        self.lock = _Serial()
        self.send, self.receive = trio.open_memory_channel[object](math.inf)
        self.nursery: trio.Nursery | None = None
        self.running = False
        self.stopped = trio.Event()
        self.exit_reason: ExitReason = NORMAL
        self.auto_stopped_by: str | None = None
        #: the start and the main loop; cancelled when the supervisor is cancelled from outside
        self.interrupt = trio.CancelScope()
        #: set when this supervisor is itself killed (its own child scope cancelled by its parent, after
        #: the grace period or at once): its children are then cancelled at once, not asked
        self.killed = False
        self.grace: trio.CancelScope | None = None  # the grace period being waited out, if any

    # ---- child tasks ----------------------------------------------------------------------------

    async def _child_task(self, child: _Child, task_status: trio.TaskStatus[Any]) -> None:
        child._task_status = task_status
        del task_status
        reason: ExitReason = NORMAL
        scope = child.scope = trio.CancelScope()
        enter_child_context(child)
        try:
            # The try is outside the scope: a child that fails while cancelled (its nursery raising an
            # error next to the Cancelled) leaves the scope with the error alone, and that is a crash
            # of this child, not of its supervisor.
            with scope:
                await child.spec.start(task_status=child)
        except Exception as exc:
            if child.state == _STARTING:
                status, child._task_status = child._task_status, None
                if isinstance(exc, Ignore) and status is not None:
                    child.state = _EXITED  # never ran: no exit notice, nothing to count down
                    child.settled = True
                    status.started(_IGNORED)
                    return
                raise
            reason = exc
        if child.state == _STARTING:
            child._task_status = None
            return  # nursery.start raises "exited without calling started"
        if reason is NORMAL and (scope.cancelled_caught or child.stop_asked):
            reason = SHUTDOWN
        child.reason = reason
        child.state = _EXITED
        self.active -= 1
        if child.waiter is not None:
            child.waiter.set()
        if not child.settled:
            self.send.send_nowait(child)

    async def _start(self, spec: ChildSpec, key: Hashable = None, *, restart: bool = False) -> _Child:
        """Start ``spec`` as the child at ``key`` (a new key when None)."""
        assert self.nursery is not None
        if key is None:
            key = next(self._keys) if self.dynamic else spec.id
        child = _Child(spec, key)
        try:
            # the spec id names the task: trio would otherwise build a name string per child
            child.handle = await self.nursery.start(self._child_task, child, name=spec.id)
        except Exception as exc:
            emit(self.on_event, ChildStartFailed(self.name, spec.id, exc))
            raise ChildStartError(spec.id, exc) from exc
        if self.restarting:
            self.restarting.discard(key)
        if child.handle is _IGNORED:
            return self._ignored(child)
        if self.dynamic:
            old = self.children.get(key)
            if old is None:
                self._index_id(spec.id, key)
            elif old.handle is not None:
                self.by_handle.pop(id(old.handle), None)
            if child.handle is not None:
                self.by_handle[id(child.handle)] = key
        self.children[key] = child
        self.active += 1
        event = ChildRestarted if restart else ChildStarted
        emit(self.on_event, event(self.name, spec.id, child.handle))
        return child

    def _ignored(self, child: _Child) -> _Child:
        """supervisor.erl on ``ignore``: keep the spec, not running (``restart_child`` may start it),
        except for a temporary child or a dynamic supervisor's, which are not kept at all."""
        child.handle = None
        emit(self.on_event, ChildIgnored(self.name, child.spec.id))
        if self.dynamic or child.spec.restart is Restart.TEMPORARY:
            if self.children.get(child.key) is not None:
                self._remove(child.key)
        else:
            self.children[child.key] = child
        return child

    async def _terminate(self, child: _Child) -> None:
        """OTP's shutdown: ask, wait ``shutdown`` seconds, then cancel (BRUTAL_KILL cancels at once)."""
        if self._ask(child):
            await self._reap(child, trio.current_time() + child.spec.shutdown)

    def _ask(self, child: _Child) -> bool:
        """First half of a stop: ask the child (or cancel it at once). False when there is nothing to
        wait for, because the child never started or has already exited."""
        already = child.settled
        child.settled = True
        if child.state == _STARTING:
            return False
        if child.state == _EXITED:
            if not already and self.children.get(child.key) is child:
                # it exited by itself and its notice is still queued: report it here, the notice
                # will be recognised as stale (OTP: the 'DOWN' of a dead pid carries its real reason)
                emit(self.on_event, ChildExited(self.name, child.spec.id, child.reason))
            return False
        assert child.scope is not None
        if child.spec.shutdown <= 0 or self.killed:
            child.scope.cancel()
        else:
            child._ask_stop()
        return True

    async def _reap(self, child: _Child, deadline: float) -> None:
        """Second half: wait for the exit until ``deadline``, then cancel and wait for good."""
        assert child.scope is not None
        if not self.killed:
            try:
                with trio.move_on_at(deadline) as self.grace:
                    await child.wait_exited()
            finally:
                self.grace = None
        if child.state != _EXITED:  # (a scope already left has nothing to cancel: skip trio's cancel)
            child.scope.cancel()
            await child.wait_exited()
        emit(self.on_event, ChildExited(self.name, child.spec.id, child.reason))

    async def _stop_all(self) -> None:
        children = list(reversed(self.children.values()))
        if not self.dynamic:
            for child in children:  # one at a time, in reverse start order
                await self._terminate(child)
            return
        # A dynamic supervisor's children are peers with no order to respect, and may be thousands:
        # as OTP's simple_one_for_one, ask them all at once and give each its grace period from now,
        # so a stop takes the longest grace period, not the sum of them.
        now = trio.current_time()
        asked = [child for child in children if self._ask(child)]
        for child in asked:
            await self._reap(child, now + child.spec.shutdown)

    # ---- restart intensity --------------------------------------------------------------------

    def _add_restart(self, reason: object) -> None:
        """supervisor.erl's add_restart (``_restart_intensity``); escalates when it says so."""
        self.restarts, exceeded = add_restart(
            self.restarts, trio.current_time(), reason, intensity=self.intensity, period=self.period
        )
        if exceeded:
            raise RestartIntensityExceeded(
                self.name, self.intensity, self.period, [r for (_, r) in self.restarts]
            )

    # ---- reacting to exits --------------------------------------------------------------------

    def _remove(self, key: Hashable) -> None:
        if self.restarting:
            self.restarting.discard(key)
        child = self.children.pop(key, None)
        if child is None or not self.dynamic:
            return
        if child.handle is not None and self.by_handle.get(id(child.handle)) == key:
            del self.by_handle[id(child.handle)]
        keys = self.by_id.get(child.spec.id)
        if isinstance(keys, list):
            keys.remove(key)
            if len(keys) == 1:
                self.by_id[child.spec.id] = keys[0]
        else:
            del self.by_id[child.spec.id]

    def _index_id(self, child_id: str, key: Hashable) -> None:
        keys = self.by_id.get(child_id)
        if keys is None:
            self.by_id[child_id] = key
        elif isinstance(keys, list):
            keys.append(key)
        else:
            self.by_id[child_id] = [keys, key]

    def find(self, child: object) -> _Child:
        """The child a handle operation names: its id, or (dynamic) the handle its start returned."""
        if self.dynamic:
            # an id wins over a handle that happens to be an equal string, as ids did before handles
            keys = self.by_id.get(child) if isinstance(child, str) else None
            if isinstance(keys, list):
                raise AmbiguousChildId(
                    f"{len(keys)} children of {self.name!r} share the id {child!r}: pass the handle "
                    "start_child returned for the one you mean"
                )
            if keys is not None:
                return self.children[keys]
            if child is not None:
                key = self.by_handle.get(id(child))
                if key is not None and self.children[key].handle is child:
                    return self.children[key]
        elif isinstance(child, str):
            found = self.children.get(child)
            if found is not None:
                return found
        raise ChildNotFound(f"no child {child!r} in supervisor {self.name!r}")

    async def _handle_exit(self, child: _Child) -> bool:
        """React to an unexpected exit. Returns False when the supervisor must stop (auto-shutdown)."""
        spec = child.spec
        if self.children.get(child.key) is not child or child.settled:
            return True  # stale: that incarnation was already dealt with
        child.settled = True  # dealt with from here on
        reason = child.reason
        emit(self.on_event, ChildExited(self.name, spec.id, reason))
        restart = spec.restart is Restart.PERMANENT or (
            spec.restart is Restart.TRANSIENT and is_abnormal(reason)
        )
        if not restart:
            if spec.restart is Restart.TEMPORARY or self.dynamic:
                self._remove(child.key)
            if spec.significant and self._auto_shutdown_due():
                self.auto_stopped_by = spec.id
                return False
            return True
        self._add_restart(reason)
        await self._restart(child.key)
        return True

    def _auto_shutdown_due(self) -> bool:
        if self.auto_shutdown is AutoShutdown.ANY_SIGNIFICANT:
            return True
        if self.auto_shutdown is AutoShutdown.ALL_SIGNIFICANT:
            return not any(c.spec.significant and c.running for c in self.children.values())
        return False

    async def _restart(self, failed: Hashable) -> None:
        """Restart per strategy. A start that fails is retried later, through the queue (``_TryAgain``),
        and the retry counts as another restart, as supervisor.erl does."""
        if self.strategy is Strategy.ONE_FOR_ONE:
            group = [failed]  # no copy of the key list: a dynamic supervisor may hold thousands
        elif self.strategy is Strategy.ONE_FOR_ALL:
            group = list(self.children)
        else:
            keys = list(self.children)
            group = keys[keys.index(failed) :]
        for key in reversed(group):
            if key != failed:
                await self._terminate(self.children[key])
        to_start = []
        for key in group:
            if key != failed and self.children[key].spec.restart is Restart.TEMPORARY:
                self._remove(key)
            else:  # as start_children: the whole group, including ones that were not running
                to_start.append(key)
        try:
            for key in to_start:
                failed = key
                await self._start(self.children[key].spec, key, restart=True)
        except ChildStartError as err:
            self.restarting.add(failed)
            self.send.send_nowait(_TryAgain(failed, err.__cause__))

    async def _try_again(self, message: _TryAgain) -> None:
        """A queued retry: dropped when the child was terminated, deleted or started meanwhile."""
        if message.key not in self.restarting:
            return
        self.restarting.discard(message.key)
        self._add_restart(message.reason)
        await self._restart(message.key)

    # ---- the instance's life ------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[Any]) -> None:
        """Start the children in order, then react to exits until stopped, escalated or auto-shut-down.

        Errors are raised after the nurseries close, so they reach the caller bare, not in a group. A
        cancellation from outside is an orderly stop (see ``_watch_cancel``), after which it goes on.
        """
        error: BaseException | None = None
        escalation: RestartIntensityExceeded | None = None
        try:
            async with trio.open_nursery() as watch:
                watch.start_soon(self._watch_cancel, name=f"{self.name} cancel watcher")
                with trio.CancelScope(shield=True):
                    error, escalation = await self._supervise(task_status)
                if error is None:
                    # no checkpoint since the children stopped: reported even when cancelled
                    self.exit_reason = escalation if escalation is not None else SHUTDOWN
                    emit(self.on_event, SupervisorStopped(self.name, self.exit_reason))
                watch.cancel_scope.cancel()
        finally:
            self.stopped.set()  # _open waits on it, shielded: set it on every route
        if error is not None:
            raise error
        if escalation is not None:
            raise escalation

    async def _supervise(
        self, task_status: trio.TaskStatus[Any]
    ) -> tuple[BaseException | None, RestartIntensityExceeded | None]:
        """The shielded part of ``run``: the children's nursery, and its orderly stop on every route."""
        error: BaseException | None = None
        escalation: RestartIntensityExceeded | None = None
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            try:
                with self.interrupt:
                    error = await self._start_children()
                    if error is None:
                        ctx = current_child()
                        if ctx is not None:
                            nursery.start_soon(self._watch_stop, ctx.stop)
                        self.running = True
                        task_status.started(SupervisorHandle(self))
                        escalation = await self._main_loop()
            finally:
                self.running = False
                # under the lock: a start_child in flight finishes first, and its child is
                # stopped in order with the rest instead of being cancelled unasked
                async with self.lock:
                    await self._stop_all()
                if escalation is not None:
                    emit(self.on_event, SupervisorEscalated(self.name, escalation))
                elif self.auto_stopped_by is not None:
                    emit(self.on_event, SupervisorAutoShutdown(self.name, self.auto_stopped_by))
            nursery.cancel_scope.cancel()
        return error, escalation

    async def _start_children(self) -> BaseException | None:
        """OTP's init: start in list order; on a failure stop the started ones in reverse order."""
        started: list[_Child] = []
        try:
            for spec in self.specs:
                started.append(await self._start(spec))
        except ChildStartError as exc:
            for child in reversed(started):
                await self._terminate(child)
            return exc
        return None

    async def _main_loop(self) -> RestartIntensityExceeded | None:
        try:
            async for message in self.receive:
                if message is _STOP:
                    return None
                if isinstance(message, _TryAgain):
                    async with self.lock:
                        await self._try_again(message)
                    continue
                assert isinstance(message, _Child)
                async with self.lock:
                    if not await self._handle_exit(message):
                        return None
        except RestartIntensityExceeded as exc:
            return exc
        return None

    async def _watch_cancel(self) -> None:
        """Outside the shield: the supervisor cancelled from outside stops in order, then is cancelled.

        A cancellation of our own child scope is our parent supervisor killing us (BRUTAL_KILL, or our
        grace period ran out): then our children are cancelled at once, as OTP's kill takes a
        supervisor's children down with it, so the parent's ``shutdown`` bound holds for the tree.
        """
        ctx = current_child()
        try:
            await trio.sleep_forever()
        finally:
            if isinstance(ctx, _Child) and ctx.scope is not None and ctx.scope.cancel_called:
                self.killed = True
                if self.grace is not None:
                    self.grace.cancel()
            self.interrupt.cancel()

    async def _watch_stop(self, stop: trio.Event) -> None:
        await stop.wait()
        self.send.send_nowait(_STOP)

    def _check(self) -> None:
        if not self.running:
            raise SupervisorNotRunning(f"supervisor {self.name!r} is not running")


class SupervisorHandle:
    """What a running supervisor gives its caller: OTP's supervisor API on one instance."""

    __slots__ = ("_run",)

    def __init__(self, run: _Run) -> None:
        self._run = run

    @property
    def name(self) -> str:
        return self._run.name

    def __repr__(self) -> str:
        # Read in the supervision log (ChildStarted of a nested supervisor): say what it is, not where.
        run = self._run
        kind = "DynamicSupervisor" if run.dynamic else "Supervisor"
        state = "stopped" if run.stopped.is_set() else "running"
        return f"<{kind} {run.name!r} {state}, {len(run.children)} children>"

    def which_children(self) -> list[ChildRecord]:
        """Children in start order; ``handle`` is None for a child that is not running."""
        return [
            ChildRecord(c.spec.id, c.handle if c.running else None, c.spec.type, c.spec.restart, c.running)
            for c in self._run.children.values()
        ]

    def which_child(self, child_id: str) -> Any:
        """The handle of the running child ``child_id`` (the first one, in a dynamic supervisor), or
        None: what ``which_children`` would say of it, without building a row per child (the runtime
        looks a child up on every session start and close)."""
        run = self._run
        child = run.children.get(child_id) if not run.dynamic else None
        if child is None and run.dynamic:
            child = next((c for c in run.children.values() if c.spec.id == child_id), None)
        return child.handle if child is not None and child.running else None

    def count_children(self) -> ChildCounts:
        children = self._run.children.values()
        sups = sum(1 for c in children if c.spec.type is ChildType.SUPERVISOR)
        return ChildCounts(len(self._run.children), self._run.active, sups, len(self._run.children) - sups)

    async def start_child(self, spec: ChildSpec) -> Any:
        """Start one more child and return its handle (the value its start passed to ``started``).

        A static supervisor refuses an id it already has (``ChildAlreadyPresent``). A dynamic one, like
        OTP's simple_one_for_one, starts the same spec as often as asked: to address one of several
        children sharing an id, pass its handle to ``terminate_child``.
        """
        run = self._run
        run._check()
        async with run.lock:
            run._check()  # it may have stopped while we waited for the lock
            _check_combination(spec, run.auto_shutdown)
            existing = None if run.dynamic else run.children.get(spec.id)
            if existing is not None:
                if existing.running:
                    raise ChildAlreadyPresent(f"child {spec.id!r} is already running in {run.name!r}")
                raise ChildAlreadyPresent(
                    f"child {spec.id!r} already has a spec in {run.name!r}: restart_child or delete_child it"
                )
            if run.max_children is not None and len(run.children) >= run.max_children:
                raise MaxChildrenReached(
                    f"supervisor {run.name!r} already runs max_children={run.max_children} children; "
                    "terminate one first or raise max_children"
                )
            child = await run._start(spec)
            return child.handle

    async def terminate_child(self, child_id: str | Any) -> None:
        """Stop a child with its shutdown policy; it is not restarted. Temporary (and dynamic) children
        are forgotten; others keep their spec for ``restart_child``.

        ``child_id`` is the child's id or, in a dynamic supervisor, the handle ``start_child`` returned
        (OTP's pid); an id shared by several dynamic children raises ``AmbiguousChildId``.
        """
        run = self._run
        run._check()
        async with run.lock:
            run._check()  # it may have stopped while we waited for the lock
            try:
                child = run.find(child_id)
            except ChildNotFound:
                if run.dynamic and not isinstance(child_id, str):
                    return  # OTP: ok for the pid of a child that is no longer alive
                raise
            run.restarting.discard(child.key)  # a failed restart waiting to be retried is not retried
            await run._terminate(child)
            if child.spec.restart is Restart.TEMPORARY or run.dynamic:
                run._remove(child.key)

    async def restart_child(self, child_id: str | Any) -> Any:
        run = self._run
        run._check()
        async with run.lock:
            run._check()  # it may have stopped while we waited for the lock
            child = run.find(child_id)
            _check_not_running(run, child, child_id)
            return (await run._start(child.spec, child.key)).handle

    async def delete_child(self, child_id: str | Any) -> None:
        run = self._run
        run._check()
        async with run.lock:
            run._check()  # it may have stopped while we waited for the lock
            child = run.find(child_id)
            _check_not_running(run, child, child_id)
            run._remove(child.key)

    def stop(self) -> None:
        """Ask the supervisor to stop its children (reverse order) and exit normally."""
        self._run.send.send_nowait(_STOP)

    async def wait_stopped(self) -> ExitReason:
        await self._run.stopped.wait()
        return self._run.exit_reason


def _check_not_running(run: _Run, child: _Child, child_id: object) -> None:
    if child.running:
        raise ChildStillRunning(f"child {child_id!r} is running: terminate_child it first")
    if child.key in run.restarting:
        # OTP: {error, restarting}
        raise ChildStillRunning(
            f"child {child_id!r} is being restarted by its supervisor (its last restart failed and will "
            "be retried): terminate_child it first"
        )


def _check_combination(spec: ChildSpec, auto_shutdown: AutoShutdown) -> None:
    if spec.significant and auto_shutdown is AutoShutdown.NEVER:
        raise ValueError(
            f"child {spec.id!r} is significant, but the supervisor's auto_shutdown is NEVER, which would "
            "ignore it (OTP refuses this as bad_combination): give the supervisor "
            "auto_shutdown=ANY_SIGNIFICANT or ALL_SIGNIFICANT, or make the child not significant"
        )


def _as_tuple(children: Iterable[ChildSpec]) -> tuple[ChildSpec, ...]:
    return tuple(children)


def _unique_ids(_inst: object, _attr: object, children: Sequence[ChildSpec]) -> None:
    seen: set[str] = set()
    for spec in children:
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"children must be ChildSpec records, got {spec!r}")
        if spec.id in seen:
            raise ChildAlreadyPresent(f"two children share the id {spec.id!r}: ids must be unique")
        seen.add(spec.id)


def _check_intensity(_inst: object, _attr: object, value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"intensity must be an int >= 0, got {value!r}")


def _check_period(_inst: object, _attr: object, value: float) -> None:
    if not value > 0:
        raise ValueError(f"period must be > 0 seconds, got {value!r}")


def _check_max_children(_inst: object, _attr: object, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ValueError(f"max_children must be None or an int >= 0, got {value!r}")


@attrs.frozen
class Supervisor:
    """A supervisor's configuration; calling it (as a ChildSpec start) runs one fresh instance."""

    children: Sequence[ChildSpec] = attrs.field(converter=_as_tuple, validator=_unique_ids)
    strategy: Strategy = attrs.field(default=Strategy.ONE_FOR_ONE, converter=to_strategy)
    intensity: int = attrs.field(default=DEFAULTS.intensity, validator=_check_intensity)
    period: float = attrs.field(default=DEFAULTS.period, validator=_check_period)
    auto_shutdown: AutoShutdown = attrs.field(default=AutoShutdown.NEVER, converter=to_auto_shutdown)
    name: str = "supervisor"
    on_event: EventHook | None = None

    def __attrs_post_init__(self) -> None:
        for spec in self.children:
            _check_combination(spec, self.auto_shutdown)

    def _new_run(self) -> _Run:
        return _Run(
            self.children,
            strategy=self.strategy,
            intensity=self.intensity,
            period=self.period,
            auto_shutdown=self.auto_shutdown,
            name=self.name,
            on_event=self.on_event,
        )

    async def __call__(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await self._new_run().run(task_status)


@attrs.frozen
class DynamicSupervisor:
    """OTP's simple_one_for_one: children added at run time, one_for_one, optional ``max_children``."""

    max_children: int | None = attrs.field(default=None, validator=_check_max_children)
    intensity: int = attrs.field(default=DEFAULTS.intensity, validator=_check_intensity)
    period: float = attrs.field(default=DEFAULTS.period, validator=_check_period)
    name: str = "dynamic_supervisor"
    on_event: EventHook | None = None

    def _new_run(self) -> _Run:
        return _Run(
            (),
            strategy=Strategy.ONE_FOR_ONE,
            intensity=self.intensity,
            period=self.period,
            auto_shutdown=AutoShutdown.NEVER,
            name=self.name,
            on_event=self.on_event,
            dynamic=True,
            max_children=self.max_children,
        )

    async def __call__(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await self._new_run().run(task_status)


@asynccontextmanager
async def _open(run: _Run) -> AsyncIterator[SupervisorHandle]:
    lone: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            handle: SupervisorHandle = await nursery.start(run.run)
            # the supervisor stopping by itself (auto-shutdown, escalation) ends the body too
            nursery.start_soon(_cancel_when_stopped, run, nursery)
            try:
                yield handle
            finally:
                # Leaving the body by any route (even cancelled) is an orderly stop: children stop in
                # reverse order with their shutdown policies, as when OTP shuts a supervisor down.
                if run.running:
                    handle.stop()
                    with trio.CancelScope(shield=True):
                        await run.stopped.wait()
    except BaseExceptionGroup as group:
        # Strict nurseries wrap everything; a lone error (the body's own, a start failure, the
        # escalation) is raised bare, since the user opened no nursery of their own.
        lone = _lone_error(group)
        if lone is None:
            raise
    if lone is not None:
        raise lone


def _lone_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The lone error, or else the escalation among several (the one a caller must see)."""
    lone = lone_error(group)
    if lone is not None:
        return lone
    escalation = group.subgroup(RestartIntensityExceeded)
    if escalation is not None and len(escalation.exceptions) == 1:
        return escalation.exceptions[0]
    return None


async def _cancel_when_stopped(run: _Run, nursery: trio.Nursery) -> None:
    await run.stopped.wait()
    nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_supervisor(
    children: Sequence[ChildSpec],
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: int = DEFAULTS.intensity,
    period: float = DEFAULTS.period,
    auto_shutdown: AutoShutdown = AutoShutdown.NEVER,
    name: str = "supervisor",
    on_event: EventHook | None = None,
) -> AsyncIterator[SupervisorHandle]:
    """Run a supervisor for the body's duration; escalation raises RestartIntensityExceeded here."""
    config = Supervisor(children, strategy, intensity, period, auto_shutdown, name, on_event)
    async with _open(config._new_run()) as handle:
        yield handle


@asynccontextmanager
async def open_dynamic_supervisor(
    *,
    max_children: int | None = None,
    intensity: int = DEFAULTS.intensity,
    period: float = DEFAULTS.period,
    name: str = "dynamic_supervisor",
    on_event: EventHook | None = None,
) -> AsyncIterator[SupervisorHandle]:
    config = DynamicSupervisor(max_children, intensity, period, name, on_event)
    async with _open(config._new_run()) as handle:
        yield handle
