"""The shipped memory backends pass the conformance kit."""

import time
import unittest

from hypothesis import HealthCheck, settings
from mcpvisor.backends import MemorySessionStore, MemoryTaskBackend
from mcpvisor.backends.testing import session_store_conformance, task_backend_conformance

TestMemorySessionStore = session_store_conformance(lambda clock: MemorySessionStore(clock=clock))
TestMemorySessionStoreShortDefaultTTL = session_store_conformance(
    lambda clock: MemorySessionStore(clock=clock, default_ttl=1.5), default_ttl=1.5
)
TestMemoryTaskBackend = task_backend_conformance(lambda clock: MemoryTaskBackend(clock=clock))

# The real-time mode (what Redis uses) exercised on the memory backends with the wall clock.
_REAL_TIME = settings(
    max_examples=4, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)
TestMemorySessionStoreRealTime = session_store_conformance(
    lambda clock: MemorySessionStore(clock=clock), real_time=True, settings=_REAL_TIME
)
TestMemoryTaskBackendRealTime = task_backend_conformance(
    lambda clock: MemoryTaskBackend(clock=clock), real_time=True, settings=_REAL_TIME
)


def test_real_time_factory_gets_the_wall_clock() -> None:
    seen: list[object] = []

    def factory(clock: object) -> MemorySessionStore:
        seen.append(clock)
        return MemorySessionStore()

    case = session_store_conformance(
        factory, real_time=True, settings=settings(max_examples=1, deadline=None)
    )
    result = unittest.TestResult()
    case("runTest").run(result)
    assert not result.failures and not result.errors
    assert seen and all(clock is time.time for clock in seen)
