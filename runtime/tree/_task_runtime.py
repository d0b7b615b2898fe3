"""TaskRuntime: the actor that owns the TaskBackend and runs background tasks.

Everything about a task goes through this one actor, by message: creating it, starting its body as a
temporary child of the TaskSupervisor (a DynamicSupervisor beside it in the server tree, never a task of
the session that asked), the body's progress, input requests and outcome, reads, lists, cancels and
the expiry sweep. One owner means one writer per record (no version races on one node), and one place
where watchers are told: a ``tasks/result`` waiting for the end, and the owner's stream for
``notifications/tasks/status``.

A task outlives its session's actor: the body runs under the TaskSupervisor and reaches its client
through the runtime (``deliver``), which finds the session by id whatever its current incarnation.

Crash recovery: while a body runs, a *marker* record (owner ``mcpvisor:running:<node>``) sits in the
backend next to the task. A body that ends removes its marker. When the runtime starts (a fresh server
on a durable backend, or this actor restarted after a crash, which also took its bodies down) every
marker left names a task nobody runs any more: it is marked ``failed`` with a message saying so.

Length: the task messages (small records) and the one actor that handles them. The actor is the single
writer of every task record, so its handlers stay together; the wire formats are in protocol/_tasks.py
and the request-side methods in _task_methods.py.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import attrs
import trio
from mcpvisor.backends import TaskBackend, TaskRecord, TaskStatus
from mcpvisor.backends._codec import decode, encode
from mcpvisor.backends._errors import BackendError
from mcpvisor.supervisors import BRUTAL_KILL, ChildSpec, MaxChildrenReached, Restart

from ..actors import NO_REPLY, ActorExited, Caller, Registry
from ..protocol import (
    INTERNAL_ERROR,
    ErrorResponse,
    JsonRpcError,
    Message,
    Notification,
    Request,
    RequestId,
    Response,
)
from ..protocol._tasks import task_wire, with_related_task
from ._request_env import ClientWaiter, wait_client_answer
from ._state_store_server import StoreFailed

logger = logging.getLogger("mcpvisor.runtime.tree")

#: The registry name of the TaskRuntime.
TASK_RUNTIME_NAME = "task_runtime"

#: Prefix of the ids of server-to-client requests a task body sends: the session forwards their
#: answers to the TaskRuntime instead of looking for a waiter of its own.
TASK_REQUEST_PREFIX: Final = "mcpvisor-task-"

_MARKER_PREFIX: Final = "running:"


# ---- messages ---------------------------------------------------------------------------------------


@attrs.frozen
class CreateTask:
    """Store ``record`` as is (no body): the backend's raw create, for tools and tests."""

    record: TaskRecord


@attrs.frozen
class GetTask:
    """The raw record (any owner), or None."""

    task_id: str


@attrs.frozen
class FailNodeTasks:
    """Settle as failed the tasks another node left running (its liveness lease expired)."""

    node: str


@attrs.frozen
class ExpireTasks:
    pass


@attrs.frozen
class TaskOutcome:
    """How a body ended: ``result`` (wire form) or ``error`` (a JSON-RPC error object), and the status."""

    status: TaskStatus
    result: Any = None
    error: Any = None
    status_message: str | None = None


#: A task body: runs with its ``TaskControl`` and returns how it ended (None: it became an inline
#: answer during its prelude, see ``Prelude``, and the task is discarded).
TaskWork = Callable[["TaskControl"], Awaitable[TaskOutcome | None]]


@attrs.define(eq=False)
class Prelude:
    """The moment between starting a 2026-07-28 task body and answering its ``tools/call``.

    A body that answers ``InputRequired`` before it is *promoted* gives the request an inline MRTR
    round (no task is revealed); one that asks the client through ``ctx.elicit``, ends, or is still
    working when the request stops waiting is promoted: the request answers ``CreateTaskResult``.
    Whichever happens first wins (trio runs one task at a time, so no lock is needed).
    """

    decided: trio.Event = attrs.Factory(trio.Event)
    promoted: bool = False
    inline: Any = None

    def promote(self) -> bool:
        if self.inline is not None:
            return False
        self.promoted = True
        self.decided.set()
        return True

    def keep_inline(self, value: Any) -> bool:
        if self.promoted:
            return False
        self.inline = value
        self.decided.set()
        return True


@attrs.frozen
class StartTask:
    owner: str
    work: TaskWork
    ttl: float | None = None
    status_message: str | None = None
    prelude: Prelude | None = None


@attrs.frozen
class DiscardTask:
    """Forget a task whose prelude answered inline (it was never revealed to the client)."""

    task_id: str


@attrs.frozen
class UpdateInputs:
    """``tasks/update``: the client's answers to the task's pending input requests, by key."""

    task_id: str
    owner: str
    responses: Any


@attrs.frozen
class LookupTask:
    """The owner's record, or None (unknown, expired, or another owner's: all look the same)."""

    task_id: str
    owner: str


@attrs.frozen
class ListTasks:
    owner: str
    cursor: str | None = None
    limit: int = 50


@attrs.frozen
class CancelTask:
    task_id: str
    owner: str
    message: str = "The task was cancelled by request."


@attrs.frozen
class AwaitTask:
    """Reply once the task is terminal (deferred until then). While waiting, the body's requests to
    the client are pushed into ``inbox`` (the ``tasks/result`` stream forwards them)."""

    task_id: str
    owner: str
    inbox: trio.MemorySendChannel[Message] | None = None


@attrs.frozen
class AskClient:
    """From a body: send ``method`` to the client; replies ``(request_id, ClientWaiter)``."""

    task_id: str
    method: str
    params: Any


@attrs.frozen
class InputAnswered:
    task_id: str
    request_id: RequestId


@attrs.frozen
class ClientAnswer:
    """From a session: the client's answer to a body's request (id with ``TASK_REQUEST_PREFIX``)."""

    message: Any


@attrs.frozen
class TaskNotify:
    """From a body: a notification for its client (progress, log); stored progress when it is one."""

    task_id: str
    notification: Notification


@attrs.frozen
class BodyEnded:
    task_id: str
    outcome: TaskOutcome | None


@attrs.frozen
class TooManyTasks:
    """``StartTask`` refused: the TaskSupervisor already runs ``max_running_tasks`` bodies."""

    limit: int | None


@attrs.frozen
class AlreadyTerminal:
    """``CancelTask`` of a task that has already ended."""

    record: TaskRecord


# ---- what a body holds --------------------------------------------------------------------------------


@attrs.define(eq=False)
class TaskControl:
    """A running body's line to the TaskRuntime (every call is a message to it)."""

    task_id: str
    registry: Registry
    prelude: Prelude | None = None

    def _ref(self) -> Any:
        ref = self.registry.whereis(TASK_RUNTIME_NAME)
        if ref is None:
            raise RuntimeError("the TaskRuntime is not running (the server is restarting or stopping)")
        return ref

    async def notify(self, notification: Notification) -> None:
        ref = self.registry.whereis(TASK_RUNTIME_NAME)
        if ref is not None:
            with contextlib.suppress(ActorExited):
                await ref.cast(TaskNotify(self.task_id, notification))

    async def ask(self, method: str, params: Any, timeout: float | None) -> Any:
        if self.prelude is not None:
            self.prelude.promote()
        request_id, waiter = await self._ref().call(AskClient(self.task_id, method, params))
        try:
            return await wait_client_answer(waiter, timeout)
        finally:
            ref = self.registry.whereis(TASK_RUNTIME_NAME)
            if ref is not None:
                with contextlib.suppress(ActorExited):
                    await ref.cast(InputAnswered(self.task_id, request_id))


# ---- the actor ---------------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Running:
    scope: trio.CancelScope
    owner: str
    asks: dict[RequestId, Request] = attrs.Factory(dict)
    #: what ``tasks/get`` shows as ``inputRequests`` (2026-07-28), also kept in the record
    pending: dict[RequestId, Any] = attrs.Factory(dict)
    waiters: dict[RequestId, ClientWaiter] = attrs.Factory(dict)


def encode_outcome_error(code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return error


class TaskRuntime:
    """Behaviour. ``supervisor()`` finds the TaskSupervisor (a sibling started after this actor);
    ``deliver(owner, message)`` puts a message on the owner's stream (a session's standalone stream);
    ``clock`` stamps records and must be the backend's clock."""

    def __init__(
        self,
        backend: TaskBackend,
        *,
        registry: Registry | None = None,
        supervisor: Callable[[], Any] | None = None,
        deliver: Callable[[str, Message], None] | None = None,
        default_ttl: float | None = 3600.0,
        max_ttl: float | None = 86400.0,
        poll_interval: float = 1.0,
        node: str = "default",
        clock: Callable[[], float] = time.time,
        max_running: int | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self._supervisor = supervisor
        self._deliver = deliver
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.poll_interval = poll_interval
        self.marker_owner = f"mcpvisor:running:{node}"
        self.clock = clock
        #: the TaskSupervisor's max_children (for the error a full one gives)
        self.max_running = max_running
        self.running: dict[str, _Running] = {}
        self._awaiting: dict[str, list[tuple[Caller, AwaitTask]]] = {}
        self._next_ask = 0
        #: how many orphaned tasks the last start marked failed (for tests and logs)
        self.recovered = 0

    async def init(self) -> None:
        try:
            self.recovered = await self._fail_orphans()
        except Exception as exc:  # a failing backend must not stop the server from starting
            logger.warning("task recovery at start-up failed: %r", exc)

    # ---- calls ---------------------------------------------------------------------------------------

    async def handle_call(self, msg: Any, caller: Caller) -> Any:
        try:
            kind = type(msg)
            if kind is StartTask:
                return await self._start(msg)
            if kind is LookupTask:
                return await self._lookup(msg.task_id, msg.owner)
            if kind is ListTasks:
                try:
                    return await self.backend.list(msg.owner, cursor=msg.cursor, limit=msg.limit)
                except ValueError as exc:  # a malformed cursor: the caller's mistake, not the backend's
                    return exc
            if kind is CancelTask:
                return await self._cancel(msg)
            if kind is AwaitTask:
                return await self._await(msg, caller)
            if kind is AskClient:
                return await self._ask(msg)
            if kind is UpdateInputs:
                return await self._update_inputs(msg)
            if kind is DiscardTask:
                return await self.backend.delete(msg.task_id)
            if kind is CreateTask:
                return await self.backend.create(msg.record)
            if kind is GetTask:
                return await self.backend.get(msg.task_id)
            if kind is ExpireTasks:
                return await self._expire()
            if kind is FailNodeTasks:
                return await self._fail_orphans(
                    f"mcpvisor:running:{msg.node}",
                    f"The server stopped while this task was running (node {msg.node}), so it never "
                    "finished; call the tool again to rerun it.",
                )
        except Exception as exc:
            return StoreFailed(exc)
        raise TypeError(f"TaskRuntime got an unknown message {msg!r}")

    async def handle_cast(self, msg: Any) -> None:
        try:
            kind = type(msg)
            if kind is TaskNotify:
                await self._notify(msg)
            elif kind is BodyEnded:
                await self._ended(msg)
            elif kind is InputAnswered:
                await self._input_answered(msg)
            elif kind is ClientAnswer:
                await self._client_answer(msg.message)
        except BackendError as exc:
            logger.warning("task %s: the backend refused an update: %r", getattr(msg, "task_id", "?"), exc)

    # ---- creating and running -------------------------------------------------------------------------

    def _ttl(self, requested: float | None) -> float | None:
        ttl = self.default_ttl if requested is None else requested
        if self.max_ttl is not None and (ttl is None or ttl > self.max_ttl):
            ttl = self.max_ttl
        return ttl

    async def _start(self, msg: StartTask) -> TaskRecord | TooManyTasks:
        supervisor = self._supervisor() if self._supervisor is not None else None
        if supervisor is None or self.registry is None:
            raise RuntimeError("the TaskSupervisor is not running: the server is starting or stopping")
        now = self.clock()
        task_id = uuid.uuid4().hex
        record = await self.backend.create(
            TaskRecord(
                task_id,
                msg.owner,
                status_message=msg.status_message,
                created_at=now,
                updated_at=now,
                ttl=self._ttl(msg.ttl),
                poll_interval=self.poll_interval,
            )
        )
        await self.backend.create(
            TaskRecord(
                _MARKER_PREFIX + task_id, self.marker_owner, created_at=now, updated_at=now, ttl=record.ttl
            )
        )
        scope = trio.CancelScope()
        self.running[task_id] = _Running(scope, msg.owner)
        control = TaskControl(task_id, self.registry, msg.prelude)
        spec = ChildSpec(
            f"task {task_id[:8]}",
            functools.partial(_run_body, self.registry, task_id, scope, msg.work, control),
            restart=Restart.TEMPORARY,
            shutdown=BRUTAL_KILL,
        )
        try:
            await supervisor.start_child(spec)
        except BaseException as exc:
            self.running.pop(task_id, None)
            with trio.CancelScope(shield=True):
                await self.backend.delete(task_id)
                await self.backend.delete(_MARKER_PREFIX + task_id)
            if isinstance(exc, MaxChildrenReached):
                return TooManyTasks(self.max_running)
            raise
        return record

    async def _lookup(self, task_id: str, owner: str) -> TaskRecord | None:
        if task_id.startswith(_MARKER_PREFIX):
            return None
        record = await self.backend.get(task_id)
        if record is None or record.owner != owner:
            return None
        return record

    async def _update(self, record: TaskRecord, **changes: Any) -> TaskRecord:
        new = await self.backend.update(
            attrs.evolve(record, updated_at=self.clock(), **changes), expected_version=record.version
        )
        if new.status is not record.status or new.status_message != record.status_message:
            self._tell_status(new)
        if new.status.is_terminal:
            self._wake_awaiting(new)
        return new

    def _tell_status(self, record: TaskRecord) -> None:
        if self._deliver is None:
            return
        self._deliver(record.owner, Notification("notifications/tasks/status", task_wire(record)))

    async def _cancel(self, msg: CancelTask) -> TaskRecord | AlreadyTerminal | None:
        record = await self._lookup(msg.task_id, msg.owner)
        if record is None:
            return None
        if record.status.is_terminal:
            return AlreadyTerminal(record)
        running = self.running.get(msg.task_id)
        if running is not None:
            running.scope.cancel()
        return await self._update(record, status=TaskStatus.CANCELLED, status_message=msg.message)

    async def _await(self, msg: AwaitTask, caller: Caller) -> Any:
        record = await self._lookup(msg.task_id, msg.owner)
        if record is None or record.status.is_terminal:
            return record
        self._awaiting.setdefault(msg.task_id, []).append((caller, msg))
        running = self.running.get(msg.task_id)
        if running is not None and msg.inbox is not None:
            for request in running.asks.values():
                _offer(msg.inbox, request)
        return NO_REPLY

    def _wake_awaiting(self, record: TaskRecord) -> None:
        for caller, _ in self._awaiting.pop(record.task_id, ()):
            caller.reply(record)

    def _inboxes(self, task_id: str) -> list[trio.MemorySendChannel[Message]]:
        waiting = self._awaiting.get(task_id, ())
        return [m.inbox for c, m in waiting if c.waiting and m.inbox is not None]

    # ---- a body's traffic -----------------------------------------------------------------------------

    async def _ask(self, msg: AskClient) -> tuple[RequestId, ClientWaiter]:
        running = self.running.get(msg.task_id)
        if running is None:
            raise RuntimeError(f"task {msg.task_id} is not running")
        self._next_ask += 1
        request_id = f"{TASK_REQUEST_PREFIX}{msg.task_id}-{self._next_ask}"
        request = Request(request_id, msg.method, with_related_task(msg.params, msg.task_id))
        waiter = running.waiters[request_id] = ClientWaiter()
        running.asks[request_id] = request
        running.pending[request_id] = {"method": msg.method, "params": dict(msg.params)}
        record = await self.backend.get(msg.task_id)
        if record is not None and not record.status.is_terminal:
            await self._update(
                record,
                status=TaskStatus.INPUT_REQUIRED,
                status_message=f"waiting for {msg.method}",
                input_request=encode(running.pending),
            )
        inboxes = self._inboxes(msg.task_id)
        for inbox in inboxes:
            _offer(inbox, request)
        if not inboxes and self._deliver is not None:
            self._deliver(running.owner, request)
        return request_id, waiter

    async def _client_answer(self, message: Any) -> None:
        request_id = message.id
        for task_id, running in self.running.items():
            if request_id in running.waiters:
                await self._answered(task_id, running, {request_id: message})
                return

    async def _update_inputs(self, msg: UpdateInputs) -> bool | None:
        """Resolve the pending requests ``responses`` answers (unknown keys are ignored); None when the
        task is not the owner's, False when it is not running any more."""
        record = await self._lookup(msg.task_id, msg.owner)
        if record is None:
            return None
        running = self.running.get(msg.task_id)
        if running is None:
            return False
        answers = {
            key: Response(key, dict(answer))
            for key, answer in msg.responses.items()
            if key in running.waiters and isinstance(answer, Mapping)
        }
        if answers:
            await self._answered(msg.task_id, running, answers)
        return True

    async def _answered(self, task_id: str, running: _Running, answers: Mapping[RequestId, Any]) -> None:
        """The client answered some of the task's requests: wake their waiters and, in the same step,
        drop them from the record (a ``tasks/get`` right after sees only what is still pending)."""
        for request_id, answer in answers.items():
            running.asks.pop(request_id, None)
            running.pending.pop(request_id, None)
            waiter = running.waiters.pop(request_id, None)
            if waiter is not None:
                waiter.resolve(answer)
        record = await self.backend.get(task_id)
        if record is None or record.status is not TaskStatus.INPUT_REQUIRED:
            return
        if running.pending:
            await self._update(record, input_request=encode(running.pending))
        else:
            await self._update(record, status=TaskStatus.WORKING, status_message=None, input_request=None)

    async def _input_answered(self, msg: InputAnswered) -> None:
        """From the body, once its wait ended (answered, timed out or cancelled): forget the request."""
        running = self.running.get(msg.task_id)
        if running is not None and msg.request_id in running.pending:
            running.asks.pop(msg.request_id, None)
            running.waiters.pop(msg.request_id, None)
            running.pending.pop(msg.request_id, None)
            await self._answered(msg.task_id, running, {})

    async def _notify(self, msg: TaskNotify) -> None:
        note = msg.notification
        params = dict(note.params or {})
        if note.method == "notifications/progress":
            record = await self.backend.get(msg.task_id)
            if record is not None and not record.status.is_terminal:
                progress = params.get("progress")
                total = params.get("total")
                await self._update(
                    record,
                    progress=float(progress) if isinstance(progress, int | float) else record.progress,
                    total=float(total) if isinstance(total, int | float) else record.total,
                )
        running = self.running.get(msg.task_id)
        owner = running.owner if running is not None else None
        if owner is None or self._deliver is None:
            return
        self._deliver(owner, Notification(note.method, with_related_task(params, msg.task_id)))

    async def _ended(self, msg: BodyEnded) -> None:
        running = self.running.pop(msg.task_id, None)
        if running is not None:
            for waiter in running.waiters.values():
                waiter.resolve(_gone(waiter))
        outcome = msg.outcome
        try:
            if outcome is not None:
                record = await self.backend.get(msg.task_id)
                if record is not None and not record.status.is_terminal:
                    await self._update(
                        record,
                        status=outcome.status,
                        status_message=outcome.status_message,
                        result=None if outcome.result is None else encode(outcome.result),
                        error=None if outcome.error is None else encode(outcome.error),
                    )
        finally:
            await self.backend.delete(_MARKER_PREFIX + msg.task_id)

    # ---- expiry and recovery -------------------------------------------------------------------------

    async def _expire(self) -> int:
        removed = await self.backend.expire()
        for task_id in list(self.running):
            if await self.backend.get(task_id) is None:  # past its ttl while running: stop the work
                self.running[task_id].scope.cancel()
        for task_id in list(self._awaiting):
            if await self.backend.get(task_id) is None:
                for caller, _ in self._awaiting.pop(task_id):
                    caller.reply(None)
        return removed

    async def _fail_orphans(self, marker_owner: str | None = None, message: str | None = None) -> int:
        """Fail the unfinished tasks of ``marker_owner``'s markers (default: this node's own, left by
        a previous life), and remove the markers; how many tasks failed."""
        failed = 0
        cursor: str | None = None
        owner = self.marker_owner if marker_owner is None else marker_owner
        for _ in range(100_000):  # bounded: one page per 100 markers
            page = await self.backend.list(owner, cursor=cursor, limit=100)
            for marker in page.records:
                task_id = marker.task_id.removeprefix(_MARKER_PREFIX)
                if task_id in self.running:
                    continue
                record = await self.backend.get(task_id)
                if record is not None and not record.status.is_terminal:
                    message = message or (
                        "The server stopped while this task was running, so it never finished; "
                        "call the tool again to rerun it."
                    )
                    await self._update(
                        record,
                        status=TaskStatus.FAILED,
                        status_message=message,
                        error=encode(encode_outcome_error(INTERNAL_ERROR, message)),
                    )
                    failed += 1
                await self.backend.delete(marker.task_id)
            cursor = page.next_cursor
            if cursor is None:
                break
        if failed:
            logger.warning("%d task(s) left running by %s marked failed", failed, owner)
        return failed


def _offer(inbox: trio.MemorySendChannel[Message], message: Message) -> None:
    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        inbox.send_nowait(message)


def _gone(waiter: ClientWaiter) -> Any:
    return ErrorResponse(None, JsonRpcError(INTERNAL_ERROR, "the task ended").to_error())


async def _run_body(
    registry: Registry,
    task_id: str,
    scope: trio.CancelScope,
    work: TaskWork,
    control: TaskControl,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """One task body, a temporary child of the TaskSupervisor; tells the runtime how it ended."""
    task_status.started()
    outcome: TaskOutcome | None = None
    with scope:
        try:
            outcome = await work(control)
        except Exception as exc:
            logger.exception("task %s: its body failed", task_id)
            outcome = TaskOutcome(
                TaskStatus.FAILED,
                error=encode_outcome_error(INTERNAL_ERROR, "Internal error"),
                status_message=f"the task failed: {type(exc).__name__}",
            )
    ref = registry.whereis(TASK_RUNTIME_NAME)
    if ref is not None:
        with contextlib.suppress(ActorExited):
            await ref.cast(BodyEnded(task_id, outcome))


def decode_result(data: bytes | None) -> Any:
    return None if data is None else decode(data)


def forward_task_answer(registry: Registry, message: Any) -> bool:
    """From a session: hand the client's answer to a task body's request to the TaskRuntime (False
    when the id is not a task's or nobody runs the TaskRuntime)."""
    request_id = getattr(message, "id", None)
    if not isinstance(request_id, str) or not request_id.startswith(TASK_REQUEST_PREFIX):
        return False
    ref = registry.whereis(TASK_RUNTIME_NAME)
    if ref is None:
        return False
    try:
        ref.send_nowait(ClientAnswer(message))
    except Exception:  # full or exited: the body's ask times out or ends with the task
        return False
    return True
