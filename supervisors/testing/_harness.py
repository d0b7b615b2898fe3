"""Run one real supervisor under ``MockClock`` in its own thread, and steer it from a synchronous test.

Hypothesis drives a state machine from ordinary (synchronous) code, and ``hypothesis-trio`` no longer
works with current hypothesis. So each example gets a fresh ``trio.run`` in a dedicated thread, holding
the supervisor open; every step of the machine is one ``trio.from_thread.run`` call into that loop which
injects a fault or moves the clock and then waits until every task is blocked
(``wait_all_tasks_blocked``), so the step returns only once the supervisor has finished reacting.

Children are wrapped so the harness can make them exit on command: the wrapper starts the real child
inside its own nursery, records when it starts and how it ends, and on command kills the real child
and either raises ``InjectedCrash`` (a crash) or returns (a normal exit).

When the supervisor asks a wrapped child to stop, the wrapper passes the request on (the real child
has a supervision context of its own, so ``stop_requested()``, actors and nested supervisors all see
it), lets every task run until all are blocked, and kills whatever has not finished by then. So a
clean stop (a worker returning when asked, an actor running ``terminate``, a nested supervisor
stopping its children in order) happens for real, and a stop never waits out a grace period on the
mock clock, which nobody advances during a step. Shutdown timing is for the OTP differential
(``_differential.py``) and ordinary tests.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import trio
import trio.testing

from .._child_context import enter_child_context, stop_requested
from .._errors import SupervisorError
from .._spec import AutoShutdown, ChildSpec, Strategy
from .._supervisor import _Child
from ._model import AutoShutdownTriggered, Escalated, Event, Exited, ExitKind, Started

_STEP_TIMEOUT = 30.0  # real seconds a single step may take before the harness reports a hang
_SETTLE_CUSHION = 1e-6  # real seconds; more than the wrappers' 0


class InjectedCrash(Exception):
    """The exception a child raises when the test harness crashes it on purpose."""

    def __init__(self, child_id: str) -> None:
        self.child_id = child_id
        super().__init__(f"injected crash of child {child_id!r}")


@attrs.define
class _Control:
    """One running incarnation of a wrapped child."""

    child_id: str
    woken: trio.Event = attrs.field(factory=trio.Event)
    why: ExitKind | str | None = None

    def wake(self, why: ExitKind | str) -> None:
        if self.why is None:
            self.why = why
            self.woken.set()


def _spec_tuple(children: Iterable[ChildSpec]) -> tuple[ChildSpec, ...]:
    return tuple(children)


@attrs.frozen
class SupervisedTree:
    """A real supervisor configuration to test: children (real specs) and the supervisor's flags."""

    children: tuple[ChildSpec, ...] = attrs.field(converter=_spec_tuple)
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 3
    period: float = 5.0
    auto_shutdown: AutoShutdown = AutoShutdown.NEVER


#: Opens a supervisor: ``(children, on_event, options) -> async context manager``. The default is
#: ``open_supervisor``; a test can pass its own to test a differently configured entry point.
OpenFn = Callable[[Sequence[ChildSpec], Callable[[object], None], dict[str, Any]], Any]


def default_open(
    children: Sequence[ChildSpec], on_event: Callable[[object], None], options: dict[str, Any]
) -> Any:
    from .. import open_supervisor

    return open_supervisor(list(children), on_event=on_event, **options)


class TreeHarness:
    """One supervisor, running in its own thread and trio loop, steered step by step.

    ``log`` holds what actually happened to the children (as the wrappers saw it) plus the
    supervisor's own exit, in model vocabulary; ``reported`` holds the supervisor's ``on_event``
    events as it emitted them.
    """

    def __init__(self, tree: SupervisedTree, *, open_fn: OpenFn = default_open, quiet: bool = True) -> None:
        self.tree = tree
        #: silence mcpvisor's loggers while the tree runs: an injected crash is no news, and dozens of
        #: log lines would bury the counterexample
        self.quiet = quiet
        self._levels: dict[str, int] = {}
        self._stopping = 0  # wrappers passing a stop request on, see _controlled
        self.clock = trio.testing.MockClock()
        self.log: list[Event] = []
        self.reported: list[object] = []
        self.handle: Any = None
        self.supervisor_error: BaseException | None = None
        self.supervisor_exited = False
        self.unplanned: list[str] = []
        self._open_fn = open_fn
        self._live: dict[str, _Control] = {}
        self._ever_started: set[str] = set()
        self._token: trio.lowlevel.TrioToken | None = None
        self._done: trio.Event | None = None
        self._ready = threading.Event()
        self._thread_error: BaseException | None = None
        self._thread = threading.Thread(target=self._thread_main, name="mcpvisor-tree-harness", daemon=True)

    # lifecycle (test thread) -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop and the supervisor; returns once the supervisor has started (or failed)."""
        if self.quiet:
            for name in _LOGGERS:
                logger = logging.getLogger(name)
                self._levels[name] = logger.level
                logger.setLevel(logging.CRITICAL + 1)
        self._thread.start()
        if not self._ready.wait(_STEP_TIMEOUT):
            self._restore_logs()
            raise TimeoutError("the supervisor did not finish starting")
        if self._thread_error is not None:
            self._restore_logs()
            raise self._thread_error
        if self.supervisor_exited and self.supervisor_error is not None:
            # The model never predicts a failed start: report the supervisor's own error, not a diff.
            self.close()
            raise RuntimeError(
                f"the supervisor under test failed to start: {self.supervisor_error!r}"
            ) from self.supervisor_error
        self._call(self._settle)

    def close(self) -> None:
        """Stop the supervisor from outside (if still running), end the loop, join the thread."""
        if self._token is not None and self._thread.is_alive():
            done = self._done
            assert done is not None
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(done.set, trio_token=self._token)
        self._thread.join(_STEP_TIMEOUT)
        self._restore_logs()
        if self._thread.is_alive():
            raise TimeoutError("the supervisor did not stop when its owner exited")
        if self._thread_error is not None:
            raise self._thread_error

    def _restore_logs(self) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._levels.clear()

    # steps (test thread) -----------------------------------------------------------------------------

    def live(self) -> tuple[str, ...]:
        """Ids of the wrapped children running right now, in the tree's start order."""
        return tuple(c.id for c in self.tree.children if c.id in self._live)

    def inject(self, child_id: str, kind: ExitKind) -> None:
        """Make running child ``child_id`` exit (CRASH or NORMAL) now, then let the tree settle."""

        async def step() -> None:
            control = self._live.get(child_id)
            if control is None:
                raise AssertionError(f"child {child_id!r} is not running, cannot inject {kind}")
            control.wake(kind)
            await self._settle()

        self._call(step)

    def advance(self, seconds: float) -> None:
        """Move the mock clock forward and let the tree settle."""

        async def step() -> None:
            self.clock.jump(seconds)
            await self._settle()

        self._call(step)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` (sync or async) inside the tree's loop, e.g. to query the handle."""

        async def step() -> Any:
            result = fn(*args)
            if hasattr(result, "__await__"):
                result = await result
            return result

        return self._call(step)

    def call_api(self, name: str, *args: Any) -> object:
        """Call the supervisor handle's method ``name``, let the tree settle, and return the result or
        the ``SupervisorError`` it raised (API errors are results to compare, not failures)."""

        async def step() -> object:
            try:
                result = await getattr(self.handle, name)(*args)
            except SupervisorError as exc:
                result = exc
            await self._settle()
            return result

        return self._call(step)

    def start_child(self, child_id: str) -> object:
        """``start_child`` with the tree's own spec of ``child_id``, wrapped like the others."""
        spec = next(c for c in self.tree.children if c.id == child_id)
        return self.call_api("start_child", self._wrap(spec))

    # inside the loop ---------------------------------------------------------------------------------

    def _call(self, afn: Callable[[], Any]) -> Any:
        assert self._token is not None
        return trio.from_thread.run(afn, trio_token=self._token)

    async def _settle(self) -> None:
        # A longer cushion than the wrappers' (see _controlled): when every task is blocked, trio
        # wakes only the waiters with the shortest cushion, so a wrapper finishing a stop goes first
        # and a step ends only once nobody has anything left to do.
        await trio.testing.wait_all_tasks_blocked(_SETTLE_CUSHION)
        while self._stopping:
            await trio.testing.wait_all_tasks_blocked(_SETTLE_CUSHION)

    def _thread_main(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:  # reported to the test thread by start()/close()
            self._thread_error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._done = trio.Event()
        tree = self.tree
        options: dict[str, Any] = {
            "strategy": tree.strategy,
            "intensity": tree.intensity,
            "period": tree.period,
            "auto_shutdown": tree.auto_shutdown,
        }
        children = [self._wrap(c) for c in tree.children]
        try:
            async with self._open_fn(children, self.reported.append, options) as handle:
                self.handle = handle
                self._ready.set()
                await self._done.wait()
        except BaseException as exc:
            if isinstance(exc, trio.Cancelled):
                raise
            self.supervisor_error = exc
            if _is_escalation(exc):
                self.log.append(Escalated())
        else:
            if not self._done.is_set():
                self.log.append(AutoShutdownTriggered())
        self.supervisor_exited = True
        self._ready.set()
        await self._done.wait()

    def _wrap(self, spec: ChildSpec) -> ChildSpec:
        return attrs.evolve(spec, start=self._controlled(spec))

    def _controlled(self, spec: ChildSpec) -> Callable[..., Any]:
        harness = self

        async def controlled(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            control = _Control(spec.id)
            stop = stop_requested()
            # The real child's own supervision context: its stop request is passed on by the wrapper,
            # and cancelling its scope is a kill (a nested supervisor then cancels its children at
            # once instead of giving them their grace period on a clock nobody moves).
            inner = _Child(spec, spec.id)
            scope = inner.scope = trio.CancelScope()

            async def real(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
                enter_child_context(inner)
                try:
                    with scope:
                        await spec.start(task_status=task_status)
                except BaseException as exc:
                    if not _only_cancelled(exc):
                        harness.unplanned.append(f"child {spec.id!r} crashed by itself: {exc!r}")
                    raise
                # a child that returns when asked to stop stops cleanly; unasked, it exited by itself
                control.wake(ExitKind.SHUTDOWN if inner.stop_asked or scope.cancel_called else "returned")

            async def watch_stop() -> None:
                await stop.wait()
                control.wake(ExitKind.SHUTDOWN)

            kind = ExitKind.SHUTDOWN
            try:
                async with trio.open_nursery() as nursery:
                    handle = await nursery.start(real)
                    nursery.start_soon(watch_stop)
                    harness.log.append(Started(spec.id, restart=spec.id in harness._ever_started))
                    harness._ever_started.add(spec.id)
                    harness._live[spec.id] = control
                    task_status.started(handle)
                    try:
                        await control.woken.wait()
                        if control.why is ExitKind.SHUTDOWN and not scope.cancel_called:
                            harness._stopping += 1
                            try:
                                inner._ask_stop()  # pass the request on; what is clean is done at once
                                await trio.testing.wait_all_tasks_blocked()
                            finally:
                                harness._stopping -= 1
                    finally:
                        scope.cancel()  # whatever is left is killed: a stop takes no mock time
                        nursery.cancel_scope.cancel()
                why = control.why
                if why == "returned":
                    harness.unplanned.append(f"child {spec.id!r} returned by itself")
                    kind = ExitKind.NORMAL
                elif isinstance(why, ExitKind):
                    kind = why
            finally:
                if harness._live.get(spec.id) is control:
                    del harness._live[spec.id]
                    harness.log.append(Exited(spec.id, kind))
            if kind is ExitKind.CRASH:
                raise InjectedCrash(spec.id)

        return controlled


_LOGGERS = ("mcpvisor", "mcpvisor.supervisors")


def _only_cancelled(exc: BaseException) -> bool:
    """A bare ``Cancelled``, or a group of nothing else (what a cancelled nested supervisor raises)."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(e) for e in exc.exceptions)
    return False


def _is_escalation(exc: BaseException) -> bool:
    from .._errors import RestartIntensityExceeded

    if isinstance(exc, RestartIntensityExceeded):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_is_escalation(e) for e in exc.exceptions)
    return False
