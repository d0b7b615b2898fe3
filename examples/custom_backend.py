"""A complete custom backend: session values and task records as files in a directory.

Every session is one file (a msgpack map ``key -> [value, expires_at]``) and every task record is one
file (the codec's record blob). Nothing to inherit: the classes just have the methods of
``SessionStateStore`` and ``TaskBackend``. File I/O runs in a worker thread so the trio loop never
blocks. tests/test_backend_kit_custom.py runs the conformance kit against both classes.

Run it: ``python examples/custom_backend.py /tmp/some-dir``.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import msgpack
import trio
from mcpvisor.backends import (
    DEFAULT_VALUE_TTL,
    InvalidTransition,
    TaskExists,
    TaskNotFound,
    TaskPage,
    TaskRecord,
    VersionConflict,
    check_transition,
    decode_task_record,
    encode_task_record,
)


def _file_name(name: str) -> str:
    """Any id as a safe file name (ids may contain '/', ':' or anything else)."""
    return name.encode().hex() or "empty"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


class FileSessionStore:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        default_ttl: float = DEFAULT_VALUE_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._default_ttl = default_ttl
        self._clock = clock
        self._lock = trio.Lock()  # one writer at a time: read-modify-write of a session file

    def _path(self, session_id: str) -> Path:
        return self._dir / f"{_file_name(session_id)}.session"

    def _load(self, session_id: str) -> dict[str, list[Any]]:
        try:
            data: dict[str, list[Any]] = msgpack.unpackb(self._path(session_id).read_bytes())
        except FileNotFoundError:
            return {}
        return data

    def _save(self, session_id: str, values: dict[str, list[Any]]) -> None:
        if values:
            _write_atomically(self._path(session_id), msgpack.packb(values))
        else:
            self._path(session_id).unlink(missing_ok=True)

    async def get(self, session_id: str, key: str) -> bytes | None:
        values = await trio.to_thread.run_sync(self._load, session_id)
        entry = values.get(key)
        if entry is None or entry[1] <= self._clock():
            return None
        value: bytes = entry[0]
        return value

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        expires_at = self._clock() + (self._default_ttl if ttl is None else ttl)

        def write() -> None:
            values = self._load(session_id)
            values[key] = [value, expires_at]
            self._save(session_id, values)

        async with self._lock:
            await trio.to_thread.run_sync(write)

    async def delete(self, session_id: str, key: str) -> bool:
        now = self._clock()

        def remove() -> bool:
            values = self._load(session_id)
            entry = values.pop(key, None)
            self._save(session_id, values)
            return entry is not None and entry[1] > now

        async with self._lock:
            return await trio.to_thread.run_sync(remove)

    async def keys(self, session_id: str) -> list[str]:
        values = await trio.to_thread.run_sync(self._load, session_id)
        now = self._clock()
        return sorted(key for key, entry in values.items() if entry[1] > now)

    async def drop_session(self, session_id: str) -> None:
        async with self._lock:
            await trio.to_thread.run_sync(lambda: self._path(session_id).unlink(missing_ok=True))

    async def expire(self) -> int:
        now = self._clock()

        def sweep() -> int:
            removed = 0
            for path in self._dir.glob("*.session"):
                values = msgpack.unpackb(path.read_bytes())
                live = {key: entry for key, entry in values.items() if entry[1] > now}
                removed += len(values) - len(live)
                if len(live) != len(values):
                    _write_atomically(path, msgpack.packb(live)) if live else path.unlink()
            return removed

        async with self._lock:
            return await trio.to_thread.run_sync(sweep)

    async def aclose(self) -> None:
        pass  # nothing held open between calls


def _encode_cursor(record: TaskRecord) -> str:
    return base64.urlsafe_b64encode(json.dumps([record.created_at, record.task_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, task_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(created_at), str(task_id)
    except Exception as exc:
        raise ValueError(f"malformed cursor {cursor!r}") from exc


class FileTaskBackend:
    def __init__(self, directory: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = trio.Lock()

    def _path(self, task_id: str) -> Path:
        return self._dir / f"{_file_name(task_id)}.task"

    def _read(self, task_id: str) -> TaskRecord | None:
        try:
            return decode_task_record(self._path(task_id).read_bytes())
        except FileNotFoundError:
            return None

    def _live(self, record: TaskRecord | None) -> TaskRecord | None:
        if record is None or (record.expires_at is not None and record.expires_at <= self._clock()):
            return None
        return record

    async def create(self, record: TaskRecord) -> TaskRecord:
        async with self._lock:
            if self._live(await trio.to_thread.run_sync(self._read, record.task_id)) is not None:
                raise TaskExists(f"task {record.task_id!r} already exists")
            stored = attrs.evolve(record, version=1)
            await trio.to_thread.run_sync(
                _write_atomically, self._path(record.task_id), encode_task_record(stored)
            )
            return stored

    async def get(self, task_id: str) -> TaskRecord | None:
        return self._live(await trio.to_thread.run_sync(self._read, task_id))

    async def update(self, record: TaskRecord, *, expected_version: int) -> TaskRecord:
        async with self._lock:  # the lock makes read-check-write one step: that is the CAS
            stored = self._live(await trio.to_thread.run_sync(self._read, record.task_id))
            if stored is None:
                raise TaskNotFound(f"task {record.task_id!r} does not exist")
            if stored.version != expected_version:
                raise VersionConflict(record.task_id, expected_version, stored.version)
            if (record.owner, record.created_at) != (stored.owner, stored.created_at):
                raise InvalidTransition(f"task {record.task_id!r}: owner and created_at cannot change")
            check_transition(record.task_id, stored.status, record.status)
            new = attrs.evolve(record, version=expected_version + 1)
            await trio.to_thread.run_sync(
                _write_atomically, self._path(record.task_id), encode_task_record(new)
            )
            return new

    async def list(self, owner: str, *, cursor: str | None = None, limit: int = 50) -> TaskPage:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        after = None if cursor is None else _decode_cursor(cursor)

        def scan() -> list[TaskRecord]:
            return [decode_task_record(path.read_bytes()) for path in self._dir.glob("*.task")]

        records = [r for r in await trio.to_thread.run_sync(scan) if r.owner == owner and self._live(r)]
        records.sort(key=lambda r: (-r.created_at, r.task_id))
        if after is not None:
            records = [r for r in records if (-r.created_at, r.task_id) > (-after[0], after[1])]
        page = records[:limit]
        more = len(records) > limit
        return TaskPage(tuple(page), _encode_cursor(page[-1]) if more else None)

    async def delete(self, task_id: str) -> bool:
        async with self._lock:
            record = await trio.to_thread.run_sync(self._read, task_id)
            self._path(task_id).unlink(missing_ok=True)
            return self._live(record) is not None

    async def expire(self) -> int:
        async with self._lock:
            removed = 0
            for path in list(self._dir.glob("*.task")):
                record = decode_task_record(path.read_bytes())
                if self._live(record) is None:
                    path.unlink()
                    removed += 1
            return removed

    async def aclose(self) -> None:
        pass


async def main(directory: str) -> None:
    store = FileSessionStore(Path(directory) / "sessions")
    await store.put("session-1", "greeting", b"hello")
    print("greeting:", await store.get("session-1", "greeting"))
    tasks = FileTaskBackend(Path(directory) / "tasks")
    record = await tasks.create(TaskRecord("task-1", "session-1", created_at=time.time()))
    print("task:", record.task_id, record.status.value, "version", record.version)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "custom-backend-data")
