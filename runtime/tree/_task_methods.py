"""The 2025-11-25 tasks utility: task-augmented ``tools/call`` and ``tasks/get|result|list|cancel``.

Every method is a message to the TaskRuntime (through ``TaskClient``); nothing here touches the
backend. Who owns a task (``task_owner``):

- a handshake-era request: its session (``session:<id>``). Another session's task id answers the
  spec's not-found error (-32602) in every method, exactly like an id that never existed.
- a 2026-07-28 (stateless) request of an authenticated principal (docs/auth.md): that principal
  (``principal:<key>``); another principal's task id answers not-found, as above.
- a 2026-07-28 request on a server without authentication: its tasks belong to
  ``stateless:anonymous``, and the task id (a random 128-bit uuid4, never listed
  anywhere since 2026-07-28 has no ``tasks/list``) is the bearer capability. Sessions and stateless
  requests are different owners: neither can read the other's tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import trio
from mcpvisor.backends import TaskPage, TaskRecord, TaskStatus

from ..actors import ActorExited, Registry
from ..protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    JsonRpcError,
    Message,
    Request,
    is_stateless,
)
from ..protocol._tasks import (
    TASKS_EXTENSION,
    TASKS_VERSION,
    TaskRequest,
    declares_tasks_extension,
    detailed_task_v2,
    missing_tasks_extension,
    parse_task_id,
    task_not_found,
    task_wire,
    with_related_task,
)
from ..server._caller import owner_key
from ..server._env import RequestEnv
from ._served_server import ServedServer
from ._state_store_server import StoreFailed
from ._task_runtime import (
    TASK_RUNTIME_NAME,
    AlreadyTerminal,
    AwaitTask,
    CancelTask,
    GetTask,
    ListTasks,
    LookupTask,
    StartTask,
    TaskWork,
    TooManyTasks,
    UpdateInputs,
    decode_result,
)

#: ``tasks/list`` page size.
LIST_PAGE: Final = 50

#: The owner of every task a stateless (2026-07-28) request creates; see the module docstring.
STATELESS_OWNER: Final = "stateless:anonymous"


def task_owner(env: RequestEnv) -> str:
    """A session's tasks are the session's (itself bound to its principal); a stateless request's are
    its principal's when the server authenticates, else ``stateless:anonymous``."""
    if env.session_id is not None:
        return f"session:{env.session_id}"
    key = owner_key(getattr(env, "principal", None))
    return STATELESS_OWNER if key is None else f"principal:{key}"


class TaskClient:
    """Typed calls to the TaskRuntime by name (it follows the actor across restarts).

    ``prelude_wait``: how long a 2026-07-28 task-augmented ``tools/call`` waits for its body's first
    move (an inline ``InputRequired``, a ``ctx.elicit``, or its end) before answering CreateTaskResult.
    """

    def __init__(self, registry: Registry, *, prelude_wait: float = 0.1, list_page: int = LIST_PAGE) -> None:
        self.registry = registry
        self.prelude_wait = prelude_wait
        #: ``tasks/list`` page size
        self.list_page = list_page
        #: With several nodes on one task backend, a task may run (and end) on another node, whose
        #: end this node's TaskRuntime never sees: ``tasks/result`` then also re-reads the record
        #: this often (seconds). None on a single node, where the runtime's wake-up is enough.
        self.remote_poll: float | None = None

    async def call(self, msg: Any, timeout: float | None = 30.0) -> Any:
        ref = self.registry.whereis(TASK_RUNTIME_NAME)
        if ref is None:
            raise JsonRpcError(INTERNAL_ERROR, "the task runtime is not running (restarting or stopping)")
        try:
            reply = await ref.call(msg, timeout=timeout)
        except ActorExited as exc:
            raise JsonRpcError(INTERNAL_ERROR, "the task runtime exited; retry") from exc
        if isinstance(reply, TooManyTasks):
            raise JsonRpcError(
                INTERNAL_ERROR,
                f"too many tasks are running (max_running_tasks={reply.limit}): retry when some have ended",
            )
        if isinstance(reply, StoreFailed):
            raise JsonRpcError(INTERNAL_ERROR, f"the task backend failed: {reply.error!r}") from reply.error
        return reply


def task_client_of(env: RequestEnv) -> TaskClient | None:
    """The env's TaskClient, when it runs inside a server with a TaskRuntime (not a bare LocalEnv)."""
    client = getattr(env, "tasks", None)
    return client if isinstance(client, TaskClient) else None


def serves_tasks(env: RequestEnv) -> bool:
    """Whether the 2025-11-25 tasks utility applies to this request."""
    return env.protocol_version == TASKS_VERSION and task_client_of(env) is not None


def _client(env: RequestEnv, method: str) -> TaskClient:
    """The TaskClient for a tasks/* request, after the revision's gate: 2025-11-25 sessions have the
    utility; 2026-07-28 requests must declare the extension (-32021), and its v2 has no
    ``tasks/result`` or ``tasks/list`` (-32601); other revisions have no tasks at all."""
    client = task_client_of(env)
    if client is None:
        raise JsonRpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
    if is_stateless(env.protocol_version):
        if method in ("tasks/result", "tasks/list"):
            raise JsonRpcError(
                METHOD_NOT_FOUND,
                f"Method not found: {method} (removed by the {TASKS_EXTENSION} extension: "
                "tasks/get inlines the result)",
            )
        if not declares_tasks_extension(env.client_capabilities):
            raise missing_tasks_extension(method)
        return client
    if env.protocol_version != TASKS_VERSION or method == "tasks/update":
        raise JsonRpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
    return client


async def start_task(env: RequestEnv, task: TaskRequest, work: TaskWork) -> dict[str, Any]:
    """Create the task, start its body, and answer the ``CreateTaskResult`` at once."""
    client = task_client_of(env)
    assert client is not None
    record: TaskRecord = await client.call(
        StartTask(task_owner(env), work, task.ttl, "The operation is now in progress.")
    )
    return {"task": task_wire(record)}


async def _lookup(env: RequestEnv, client: TaskClient, params: Mapping[str, Any]) -> TaskRecord:
    task_id = parse_task_id(params)
    record = await client.call(LookupTask(task_id, task_owner(env)))
    if record is None:
        raise task_not_found(task_id)
    assert isinstance(record, TaskRecord)
    return record


async def get_task(server: ServedServer, params: Mapping[str, Any], env: RequestEnv) -> Any:
    client = _client(env, "tasks/get")
    record = await _lookup(env, client, params)
    if is_stateless(env.protocol_version):
        return detailed_task_v2(record, decode_result)
    return task_wire(record)


async def update_task(server: ServedServer, params: Mapping[str, Any], env: RequestEnv) -> Any:
    """2026-07-28 ``tasks/update``: answers to the task's ``inputRequests``; an empty ack."""
    client = _client(env, "tasks/update")
    task_id = parse_task_id(params)
    responses = params.get("inputResponses", {})
    if not isinstance(responses, Mapping):
        raise JsonRpcError(
            INVALID_PARAMS, "params.inputResponses must be an object", {"field": "inputResponses"}
        )
    if await client.call(UpdateInputs(task_id, task_owner(env), responses)) is None:
        raise task_not_found(task_id)
    return {}


async def list_tasks(server: ServedServer, params: Mapping[str, Any], env: RequestEnv) -> Any:
    client = _client(env, "tasks/list")
    cursor = params.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise JsonRpcError(INVALID_PARAMS, "params.cursor must be a string", {"field": "cursor"})
    page = await client.call(ListTasks(task_owner(env), cursor, client.list_page))
    if isinstance(page, ValueError):
        raise JsonRpcError(INVALID_PARAMS, f"Invalid cursor: {cursor!r}; pass a nextCursor from tasks/list")
    assert isinstance(page, TaskPage)
    result: dict[str, Any] = {"tasks": [task_wire(r) for r in page.records]}
    if page.next_cursor is not None:
        result["nextCursor"] = page.next_cursor
    return result


async def cancel_task(server: ServedServer, params: Mapping[str, Any], env: RequestEnv) -> Any:
    client = _client(env, "tasks/cancel")
    task_id = parse_task_id(params)
    reply = await client.call(CancelTask(task_id, task_owner(env)))
    if reply is None:
        raise task_not_found(task_id)
    if is_stateless(env.protocol_version):
        return {}  # SEP-2663: an empty ack, the same for a task that had already ended
    if isinstance(reply, AlreadyTerminal):
        raise JsonRpcError(
            INVALID_PARAMS,
            f"Cannot cancel task {task_id!r}: it is already {reply.record.status.value}",
            {"taskId": task_id, "status": reply.record.status.value},
        )
    return task_wire(reply)


async def task_result(server: ServedServer, params: Mapping[str, Any], env: RequestEnv) -> Any:
    """Wait for a terminal status, then answer exactly what the call would have: its result (with the
    related-task ``_meta``) or its JSON-RPC error. While it waits, the body's requests to the client
    (elicitation, sampling) travel on this request's stream."""
    client = _client(env, "tasks/result")
    record = await _lookup(env, client, params)
    if not record.status.is_terminal:
        record = await _wait_terminal(env, client, record.task_id)
    return _final(record)


async def _wait_terminal(env: RequestEnv, client: TaskClient, task_id: str) -> TaskRecord:
    forward = getattr(env, "send_client_request", None)
    send, receive = trio.open_memory_channel[Message](64)
    result: TaskRecord | None = None
    polled: list[TaskRecord | None] = []
    async with trio.open_nursery() as nursery:
        if forward is not None:

            async def pump() -> None:
                async for message in receive:
                    if isinstance(message, Request):
                        await forward(message)

            nursery.start_soon(pump)
        if client.remote_poll is not None:
            nursery.start_soon(
                _poll_remote_end, client, client.remote_poll, task_id, polled, nursery.cancel_scope
            )
        with send:
            result = await client.call(AwaitTask(task_id, task_owner(env), send), timeout=None)
        nursery.cancel_scope.cancel()
    if polled:
        result = polled[0]
    if result is None:  # expired while we waited
        raise task_not_found(task_id)
    return result


async def _poll_remote_end(
    client: TaskClient, every: float, task_id: str, out: list[TaskRecord | None], scope: trio.CancelScope
) -> None:
    """Re-read the task until it is terminal (it may end on another node), then end the wait."""
    while True:
        await trio.sleep(every)
        try:
            record = await client.call(GetTask(task_id))
        except Exception as exc:  # the store's hiccup: the next round tries again
            logging.getLogger("mcpvisor.runtime.tree").info(
                "tasks/result: re-reading task %s failed: %r", task_id, exc
            )
            continue
        if record is None or record.status.is_terminal:
            out.append(record)
            scope.cancel()
            return


def _final(record: TaskRecord) -> Any:
    if record.error is not None:
        error = decode_result(record.error)
        raise JsonRpcError(error.get("code", INTERNAL_ERROR), error.get("message", ""), error.get("data"))
    if record.status is TaskStatus.CANCELLED or record.result is None:
        raise JsonRpcError(
            INTERNAL_ERROR,
            f"task {record.task_id!r} ended {record.status.value} without a result"
            + (f": {record.status_message}" if record.status_message else ""),
        )
    return with_related_task(decode_result(record.result), record.task_id)
