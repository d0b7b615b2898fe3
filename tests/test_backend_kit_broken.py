"""The kit can fail: deliberately broken backends must not pass it."""

from __future__ import annotations

import unittest

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from mcpvisor.backends import MemorySessionStore, MemoryTaskBackend, TaskNotFound, TaskRecord
from mcpvisor.backends.testing import session_store_conformance, task_backend_conformance

HUNT = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.generate],  # finding the bug is the point; shrinking would only cost time
    suppress_health_check=list(HealthCheck),
)


class Resurrecting(MemoryTaskBackend):
    """Lets a terminal record go back to working (skips the transition rule)."""

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        stored = await self.get(record.task_id)
        if stored is None:
            raise TaskNotFound(record.task_id)
        if stored.status.is_terminal:
            new = attrs.evolve(record, version=stored.version + 1)
            self._records[record.task_id] = new
            return new
        return await super().update(record, expected_version=expected_version)


class IgnoresCAS(MemoryTaskBackend):
    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        stored = await self.get(record.task_id)
        actual = expected_version if stored is None else stored.version
        return await super().update(record, expected_version=actual)


class WrongOrder(MemoryTaskBackend):
    """Pages oldest first."""

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50):  # type: ignore[no-untyped-def]
        page = await super().list(owner, cursor=cursor, limit=1000)
        records = tuple(reversed(page.records))[:limit]
        return type(page)(records, None)


class IgnoresTTL(MemorySessionStore):
    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await super().put(session_id, key, value, ttl=10_000_000.0)


class EmptyIsMissing(MemorySessionStore):
    async def get(self, session_id: str, key: str) -> bytes | None:
        return (await super().get(session_id, key)) or None


class NaiveKeys(MemorySessionStore):
    """Joins session and key with ':' into one namespace, so ('a', 'b:k') and ('a:b', 'k') collide."""

    async def get(self, session_id: str, key: str) -> bytes | None:
        return await super().get("", f"{session_id}:{key}")

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await super().put("", f"{session_id}:{key}", value, ttl=ttl)

    async def delete(self, session_id: str, key: str) -> bool:
        return await super().delete("", f"{session_id}:{key}")

    async def keys(self, session_id: str) -> list[str]:
        prefix = f"{session_id}:"
        return [k[len(prefix) :] for k in await super().keys("") if k.startswith(prefix)]

    async def drop_session(self, session_id: str) -> None:
        for key in await self.keys(session_id):
            await self.delete(session_id, key)


def _fails(case: type[unittest.TestCase]) -> str:
    result = unittest.TestResult()
    case("runTest").run(result)
    problems = result.failures + result.errors
    return problems[0][1] if problems else ""


@pytest.mark.parametrize("broken", [Resurrecting, IgnoresCAS, WrongOrder])
def test_kit_catches_broken_task_backend(broken: type[MemoryTaskBackend]) -> None:
    report = _fails(task_backend_conformance(lambda clock: broken(clock=clock), settings=HUNT))
    assert "AssertionError" in report, report


@pytest.mark.parametrize("broken", [IgnoresTTL, EmptyIsMissing, NaiveKeys])
def test_kit_catches_broken_session_store(broken: type[MemorySessionStore]) -> None:
    report = _fails(session_store_conformance(lambda clock: broken(clock=clock), settings=HUNT))
    assert "AssertionError" in report, report
