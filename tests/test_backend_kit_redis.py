"""The conformance kit, in real-time mode, against both Redis backends on the private redis-server.

The kit builds a fresh backend per hypothesis example; each gets a prefix of its own, so examples never
see each other's keys. Redis expires values on its own clock, hence ``real_time=True``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from mcpvisor.backends._redis import RedisSessionStore, RedisTaskBackend
from mcpvisor.backends.testing import session_store_conformance, task_backend_conformance

_SERVER: dict[str, str] = {}
_DEFAULT_TTL = 0.3


@pytest.fixture(autouse=True)
def _server_url(redis_server: str) -> None:
    # The kit's test cases are unittest classes, which cannot take fixtures as arguments.
    _SERVER["url"] = redis_server


def _prefix() -> str:
    return f"kit{uuid.uuid4().hex[:12]}"


def _session_store(_clock: Callable[[], float]) -> RedisSessionStore:
    return RedisSessionStore(_SERVER["url"], prefix=_prefix(), default_ttl=_DEFAULT_TTL)


def _task_backend(_clock: Callable[[], float]) -> RedisTaskBackend:
    return RedisTaskBackend(_SERVER["url"], prefix=_prefix())


TestRedisSessionStoreConformance = session_store_conformance(
    _session_store, real_time=True, default_ttl=_DEFAULT_TTL, name="TestRedisSessionStoreConformance"
)
TestRedisTaskBackendConformance = task_backend_conformance(
    _task_backend, real_time=True, name="TestRedisTaskBackendConformance"
)
