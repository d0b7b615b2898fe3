"""The backend conformance kit: run it against any SessionStateStore or TaskBackend.

Three lines in a test module::

    from mcpvisor.backends.testing import session_store_conformance, task_backend_conformance

    TestMyStore = session_store_conformance(lambda clock: MyStore(clock=clock))
    TestMyTasks = task_backend_conformance(lambda clock: MyTasks(clock=clock))

Each is a ``unittest.TestCase`` (pytest collects it) whose one test runs hypothesis state machines:
random operation sequences against a fresh backend per example and a pure reference model, every
result checked. ``clock`` is a fake wall clock (call it like ``time.time``) that the kit advances, so
TTLs are tested exactly and instantly. A backend whose expiry runs on a server's own clock (Redis)
passes ``real_time=True``: the factory then gets ``time.time``, the kit sleeps real time and uses TTLs of
50-300 ms, and accepts either answer for anything whose expiry falls within the few milliseconds an
operation takes. See docs/backends.md.
"""

from __future__ import annotations

import unittest
from typing import Any

from hypothesis import HealthCheck, settings

from .._behaviours import DEFAULT_VALUE_TTL
from ._clock import FakeClock
from ._machine_base import BackendMachine, Cleanup, Factory
from ._session_machine import SessionStoreMachine
from ._task_machine import TaskBackendMachine

__all__ = [
    "Cleanup",
    "Factory",
    "FakeClock",
    "SessionStoreMachine",
    "TaskBackendMachine",
    "default_settings",
    "session_store_conformance",
    "task_backend_conformance",
]


def default_settings(*, real_time: bool = False) -> settings:
    """Modest defaults: fast enough to run on every commit; raise ``max_examples`` for a soak."""
    return settings(
        max_examples=8 if real_time else 40,
        stateful_step_count=25 if real_time else 40,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def _test_case(
    base: type[BackendMachine],
    name: str,
    attributes: dict[str, Any],
    test_settings: settings | None,
    real_time: bool,
) -> type[unittest.TestCase]:
    machine = type(name, (base,), attributes)
    case: type[unittest.TestCase] = machine.TestCase  # type: ignore[attr-defined]
    case.settings = test_settings or default_settings(real_time=real_time)  # type: ignore[attr-defined]
    case.__name__ = case.__qualname__ = name
    return case


def session_store_conformance(
    factory: Factory,
    *,
    real_time: bool = False,
    default_ttl: float | None = DEFAULT_VALUE_TTL,
    cleanup: Cleanup | None = None,
    settings: settings | None = None,
    op_timeout: float = 30.0,
    name: str = "SessionStoreConformance",
) -> type[unittest.TestCase]:
    """A TestCase checking the ``SessionStateStore`` that ``factory(clock)`` builds (sync or async).

    ``default_ttl`` is the store's TTL for ``put(..., ttl=None)`` as the factory configures it (the kit
    jumps the fake clock past it). ``cleanup(store)`` (sync or async) runs after ``aclose``.
    """
    attributes = {
        "factory": staticmethod(factory),
        "cleanup": None if cleanup is None else staticmethod(cleanup),
        "real_time": real_time,
        "default_ttl": default_ttl,
        "op_timeout": op_timeout,
    }
    return _test_case(SessionStoreMachine, name, attributes, settings, real_time)


def task_backend_conformance(
    factory: Factory,
    *,
    real_time: bool = False,
    cleanup: Cleanup | None = None,
    settings: settings | None = None,
    op_timeout: float = 30.0,
    name: str = "TaskBackendConformance",
) -> type[unittest.TestCase]:
    """A TestCase checking the ``TaskBackend`` that ``factory(clock)`` builds (sync or async)."""
    attributes = {
        "factory": staticmethod(factory),
        "cleanup": None if cleanup is None else staticmethod(cleanup),
        "real_time": real_time,
        "op_timeout": op_timeout,
    }
    return _test_case(TaskBackendMachine, name, attributes, settings, real_time)
