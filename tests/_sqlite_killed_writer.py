"""A process that writes to the SQLite backends until it is killed; used by the kill -9 test.

``python _sqlite_killed_writer.py DB_PATH`` runs concurrent tasks that alternate session-value puts
and task creates, and after each awaited write returns prints one line naming what is now
acknowledged (``value KEY`` or ``task TASK_ID``), flushed at once. The test kills it with SIGKILL
while it writes and then checks that every printed write is in the file. It stops by itself after
``_MAX_WRITES`` so a broken test never leaves it running.
"""

from __future__ import annotations

import sys

import trio
from mcpvisor.backends._sqlite import SQLiteSessionStore, SQLiteTaskBackend
from mcpvisor.backends._task_record import TaskRecord

_MAX_WRITES = 200_000
#: Concurrent writer tasks: their writes reach the worker threads together and commit in batches, so
#: the test covers the batch transactions as well as lone operations.
_WRITERS = 8


def value_for(key: str) -> bytes:
    """The value written under ``key``, so the test can check content, not only presence."""
    return key.encode() * 8


async def main(path: str) -> None:
    async with SQLiteSessionStore(path) as store, SQLiteTaskBackend(path) as tasks:

        async def writer(first: int) -> None:
            for i in range(first, _MAX_WRITES, _WRITERS):
                if i % 2 == 0:
                    key = f"k{i}"
                    await store.put("session", key, value_for(key))
                    line = f"value {key}\n"
                else:
                    task_id = f"t{i}"
                    await tasks.create(
                        TaskRecord(task_id, "owner", created_at=float(i), result=value_for(task_id))
                    )
                    line = f"task {task_id}\n"
                sys.stdout.write(line)
                sys.stdout.flush()

        async with trio.open_nursery() as nursery:
            for first in range(_WRITERS):
                nursery.start_soon(writer, first)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
