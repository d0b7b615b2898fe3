"""What both conformance machines share: the backend's lifetime, the clock, and timed calls."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import trio
from hypothesis.stateful import RuleBasedStateMachine

from ._clock import FakeClock, Window, wall_window
from ._runner import TrioRunner

#: ``factory(clock)`` builds a fresh backend (or returns an awaitable of one) for every example.
Factory = Callable[[Callable[[], float]], Any]
#: ``cleanup(backend)`` runs after ``aclose`` (sync or async), e.g. to delete files or keys.
Cleanup = Callable[[Any], Any]

#: Real-time mode widens every observation window by this much (scheduling jitter on a busy machine).
REAL_TIME_MARGIN = 0.01


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class BackendMachine(RuleBasedStateMachine):
    """Owns one backend for one hypothesis example; subclasses add the rules and the model."""

    factory: ClassVar[Factory]
    cleanup: ClassVar[Cleanup | None] = None
    real_time: ClassVar[bool] = False
    op_timeout: ClassVar[float] = 30.0

    def __init__(self) -> None:
        super().__init__()
        self.runner = TrioRunner(timeout=self.op_timeout)
        self.fake_clock = FakeClock()
        clock: Callable[[], float] = time.time if self.real_time else self.fake_clock
        try:
            self.backend = self.runner.run(_maybe_await, type(self).factory(clock))
        except BaseException:
            self.runner.close()
            raise

    def now(self) -> float:
        """The time the kit stamps on records (the backend's clock)."""
        return time.time() if self.real_time else self.fake_clock.now

    def call(self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> tuple[Any, Window]:
        """Run one backend call; returns ``(result or raised Exception, window)``."""
        start = self.now()

        async def invoke() -> Any:
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                return _Raised(exc)

        outcome = self.runner.run(invoke)
        window = wall_window(start, REAL_TIME_MARGIN) if self.real_time else Window(start, start)
        if isinstance(outcome, _Raised):
            return outcome.exc, window
        return outcome, window

    def advance_time(self, seconds: float) -> None:
        if self.real_time:
            self.runner.run(trio.sleep, seconds)
        else:
            self.fake_clock.advance(seconds)

    def teardown(self) -> None:
        try:
            self.runner.run(self.backend.aclose)
            # aclose must be idempotent: the runtime's shutdown path may close twice.
            self.runner.run(self.backend.aclose)
            if type(self).cleanup is not None:
                cleanup = type(self).cleanup
                assert cleanup is not None
                self.runner.run(_maybe_await, cleanup(self.backend))
        finally:
            self.runner.close()


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def expect_ok(result: Any, what: str) -> None:
    if isinstance(result, Exception):
        raise AssertionError(f"{what} raised {type(result).__name__}: {result}") from result  # noqa: TRY004
