"""One SQLite connection owned by one worker thread, driven from trio with one hop per operation.

Why this shape (measured against raw ``sqlite3`` calls through ``trio.to_thread.run_sync`` on this
machine kind, 200-byte values): a dedicated thread fed by a queue was ~1.3x *faster* than the raw
calls sequentially and 7-14x faster with 50 concurrent trio tasks, while a ``trio.Lock`` around
``to_thread`` calls was 1.1-1.9x *slower*. The thread hop, not SQLite, dominates a small operation:

- A backend operation is one plain function over the connection, so it costs exactly one round
  trip to the worker however many statements it runs.
- The worker drains everything queued since it last woke, runs it in order, and wakes trio once
  for the whole batch; under concurrency many operations share one pair of thread wake-ups.
- A batch of several operations is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), each
  operation in a savepoint of its own: an operation that raises is rolled back alone and the others
  still commit, and the batch pays for one commit instead of one per operation (measured ~1.7x more
  operations/s with 50 concurrent trio tasks). Nobody is answered before the commit, so an
  acknowledged write is a committed write; if the commit itself fails, every operation of the batch
  gets the error. ``IMMEDIATE`` takes the write lock up front: a deferred transaction that read first
  could not upgrade to a write after another process committed (WAL's ``SQLITE_BUSY_SNAPSHOT``).
  Operations therefore must not open or end transactions themselves.
- One thread means one writer and one user of the connection, with no lock and no busy-retries in
  this process (other processes on the same file are waited for by SQLite's busy timeout).
  Reads share the connection; WAL mode lets other connections read while we write.
- ``sqlite3`` caches compiled statements per connection by their SQL text, so every operation uses
  a constant SQL string and its statement is prepared once.
- An operation cannot be abandoned half-way: cancelling ``await store.put(...)`` waits until the
  worker has run it (trio delivers the cancellation at the next checkpoint), so the caller never
  loses track of whether a write happened.

Durability: ``journal_mode=WAL`` with ``synchronous=NORMAL``. A commit appends the transaction to the
WAL file with ``write()`` before it returns, and the operating system keeps that data even if our
process is killed (``kill -9``) right after; only a power loss or OS crash can lose the last
transactions (NORMAL syncs the WAL at checkpoints, not at every commit). That is the guarantee of a
single-machine store for a server process, at a fraction of FULL's cost (one ``fsync`` per write).
"""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import outcome
import trio

from ._errors import BackendClosed, BackendError

T = TypeVar("T")

#: Seconds a statement waits for another connection's write lock (another process on the same file).
_BUSY_TIMEOUT: Final = 10.0

_SCHEMA_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS mcpvisor_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


class Schema:
    """The tables of one component (``session_values``, ``tasks``) and their version.

    The version row lets a later release migrate an existing file; an older release refuses a file
    written by a newer one rather than misreading it.
    """

    def __init__(self, component: str, version: int, statements: Sequence[str]) -> None:
        self.component = component
        self.version = version
        self.statements = tuple(statements)

    def install(self, conn: sqlite3.Connection) -> None:
        """Create (or check) the tables in one write transaction, so two processes opening a new
        file at once never see half a schema."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._create(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute(_SCHEMA_TABLE)
        row = conn.execute(
            "SELECT version FROM mcpvisor_schema WHERE component = ?", (self.component,)
        ).fetchall()
        if row and row[0][0] > self.version:
            raise self._too_new(row[0][0])
        for statement in self.statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO mcpvisor_schema (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (self.component, self.version),
        )

    def _too_new(self, found: int) -> BackendError:
        return BackendError(
            f"the {self.component!r} tables in this SQLite file are at schema version {found}, "
            f"newer than this mcpvisor understands ({self.version}): upgrade mcpvisor"
        )


#: Operations per batch transaction at most, so another process never waits long for the write lock.
_MAX_BATCH: Final = 256

_Job = tuple[Callable[[sqlite3.Connection], Any], trio.lowlevel.Task, trio.lowlevel.TrioToken]
#: Put on the queue to make the worker close the connection and exit.
_STOP: Final = None


class Database:
    """A lazily started worker thread owning one SQLite connection; ``run`` hands it a function."""

    def __init__(self, path: str | os.PathLike[str], schema: Schema, *, owner: str) -> None:
        self._path = os.fspath(path)
        self._schema = schema
        self._owner = owner
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._closing: trio.Event | None = None

    @property
    def path(self) -> str:
        return self._path

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the worker thread (opening the file first if needed).

        ``fn`` must not begin or end transactions. Run alone, each of its statements commits as it
        runs; run in a batch, it is rolled back as a whole if it raises. So an operation writes with
        one statement, or does not raise after writing (all of ours do).
        """
        if self._closed:
            raise BackendClosed(f"{self._owner} for {self._path!r} was used after aclose()")
        jobs = self._jobs
        if jobs is None:
            jobs = self._start()
        jobs.put((fn, trio.lowlevel.current_task(), trio.lowlevel.current_trio_token()))
        result: T = await trio.lowlevel.wait_task_rescheduled(_not_abortable)
        return result

    def _start(self) -> queue.SimpleQueue[_Job | None]:
        jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._jobs = jobs
        # The thread holds the queue, not this object, so a forgotten backend is still collected
        # and the finalizer stops its thread (daemon: it never blocks interpreter exit either).
        self._thread = threading.Thread(
            target=_work,
            args=(self._path, self._schema, jobs),
            name=f"mcpvisor-sqlite {self._path}",
            daemon=True,
        )
        self._thread.start()
        weakref.finalize(self, jobs.put, _STOP)
        return jobs

    async def aclose(self) -> None:
        """Finish the operations already submitted, then close the connection.

        Idempotent; a second concurrent call returns when the first has finished closing.
        """
        if self._closing is not None:
            await self._closing.wait()
            return
        self._closing = trio.Event()
        self._closed = True
        try:
            if self._jobs is not None and self._thread is not None:
                self._jobs.put(_STOP)
                await trio.to_thread.run_sync(self._thread.join)
        finally:
            self._closing.set()


def _not_abortable(_raise_cancel: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


def _work(path: str, schema: Schema, jobs: queue.SimpleQueue[_Job | None]) -> None:
    """The worker thread: open on first job, run batches in order, wake trio once per batch."""
    conn: sqlite3.Connection | None = None
    try:
        while True:
            batch = [jobs.get()]
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            todo = [job for job in batch if job is not None]
            # aclose() queues nothing after the stop; finalizer: nobody waits.
            stop = len(todo) != len(batch)
            done: list[tuple[_Job, outcome.Outcome[Any]]] = []
            if todo and conn is None:
                try:
                    conn = _open(path, schema)
                except BaseException as exc:
                    done = _all_failed(todo, exc)
                    todo = []
            if len(todo) == 1:
                assert conn is not None
                done = [(todo[0], outcome.capture(todo[0][0], conn))]
            elif todo:
                assert conn is not None
                done = _run_batch(conn, todo)
            results: dict[trio.lowlevel.TrioToken, list[tuple[trio.lowlevel.Task, outcome.Outcome[Any]]]] = {}
            for (_, task, token), result in done:
                results.setdefault(token, []).append((task, result))
            for token, answers in results.items():
                # A waiting task keeps its run alive, so the run cannot have finished; belt and braces.
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(_deliver, answers)
            if stop:
                return
    finally:
        if conn is not None:
            conn.close()


def _run_batch(conn: sqlite3.Connection, todo: list[_Job]) -> list[tuple[_Job, outcome.Outcome[Any]]]:
    """Several operations in one transaction, each in its own savepoint; see the module docstring."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except BaseException as exc:
        return _all_failed(todo, exc)
    done: list[tuple[_Job, outcome.Outcome[Any]]] = []
    try:
        for job in todo:
            conn.execute("SAVEPOINT mcpvisor_op")
            result = outcome.capture(job[0], conn)
            if isinstance(result, outcome.Error):
                conn.execute("ROLLBACK TO mcpvisor_op")
            conn.execute("RELEASE mcpvisor_op")
            done.append((job, result))
        conn.execute("COMMIT")
    except BaseException as exc:
        # The transaction did not commit: nothing of it happened, so every operation failed.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        return _all_failed(todo, exc)
    return done


def _all_failed(todo: list[_Job], exc: BaseException) -> list[tuple[_Job, outcome.Outcome[Any]]]:
    """Every operation fails with the same error, as it would have alone (``sqlite3.Error`` mostly).

    Each caller gets its own copy (chained to the original): one exception object raised in many
    tasks at once would collect all their tracebacks.
    """
    failed: list[tuple[_Job, outcome.Outcome[Any]]] = []
    for job in todo:
        try:
            own = copy.copy(exc)
        except Exception:  # an exception that cannot be copied is shared instead
            own = exc
        else:
            own.__cause__ = exc
        failed.append((job, outcome.Error(own)))
    return failed


def _deliver(done: list[tuple[trio.lowlevel.Task, outcome.Outcome[Any]]]) -> None:
    for task, result in done:
        trio.lowlevel.reschedule(task, result)


def _open(path: str, schema: Schema) -> sqlite3.Connection:
    conn = _connect(path)
    try:
        schema.install(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: sqlite3 issues no implicit BEGIN, so a lone statement is its own
    # transaction and multi-statement operations say BEGIN IMMEDIATE themselves.
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None, cached_statements=64)
    try:
        _enter_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another connection holds the file.

    Converting a fresh file takes an exclusive lock, and SQLite answers "database is locked" at once,
    without calling the busy handler, when two connections race to do it (two stores opened on one
    new file). It is our worker thread, so a short blocking sleep between tries costs nobody.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        else:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
