"""The wire forms of MCP background tasks (2025-11-25 tasks utility), as pure functions.

The runtime keeps a task as a backend ``TaskRecord`` (seconds, floats); the wire speaks milliseconds
and ISO 8601 timestamps. Everything that converts between the two lives here, so dispatch and the
TaskRuntime never build task dicts by hand.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs
from mcpvisor.backends import TaskRecord

from ._jsonrpc import INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY, JsonRpcError

#: ``_meta`` key tying a message to its task (requests, notifications and the tasks/result answer).
RELATED_TASK_META: Final = "io.modelcontextprotocol/related-task"

#: What a tool declares in its decorator, and advertises as ``execution.taskSupport``.
TaskSupport = Literal["forbidden", "optional", "required"]
TASK_SUPPORT_VALUES: Final[tuple[str, ...]] = ("forbidden", "optional", "required")

#: The revision that introduced the tasks utility; earlier handshake revisions have no tasks/*.
TASKS_VERSION: Final = "2025-11-25"

#: The server capability of the 2025-11-25 tasks utility, as we implement it.
TASKS_CAPABILITY: Final[Mapping[str, Any]] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


def iso_timestamp(seconds: float) -> str:
    """``2025-11-25T10:30:00.123Z`` (UTC, millisecond precision) for a ``time.time()`` value."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


@attrs.frozen
class TaskRequest:
    """A task-augmented request's ``params.task``: the requested ttl in seconds (None: the server's)."""

    ttl: float | None = None


def parse_task_param(params: Mapping[str, Any]) -> TaskRequest | None:
    """``params.task`` of a request, or None when the request is not task-augmented.

    A ``task`` that is not an object, or a ``ttl`` that is not a non-negative number of milliseconds,
    is -32602: the client asked for a task, so silently running it inline would surprise it.
    """
    task = params.get("task")
    if task is None:
        return None
    if not isinstance(task, Mapping):
        raise JsonRpcError(INVALID_PARAMS, 'params.task must be an object, e.g. {} or {"ttl": 60000}')
    ttl = task.get("ttl")
    if ttl is None:
        return TaskRequest()
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl < 0:
        raise JsonRpcError(
            INVALID_PARAMS, f"params.task.ttl must be a non-negative number of milliseconds, not {ttl!r}"
        )
    return TaskRequest(ttl / 1000)


def parse_task_id(params: Mapping[str, Any] | None) -> str:
    task_id = (params or {}).get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise JsonRpcError(INVALID_PARAMS, "params.taskId must be a non-empty string", {"field": "taskId"})
    return task_id


def related_task_meta(task_id: str) -> dict[str, Any]:
    return {RELATED_TASK_META: {"taskId": task_id}}


def with_related_task(wire: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """``wire`` (a result, or request/notification params) with the related-task ``_meta`` added."""
    out = dict(wire)
    out["_meta"] = {**(out.get("_meta") or {}), **related_task_meta(task_id)}
    return out


def task_not_found(task_id: str) -> JsonRpcError:
    """The spec's answer for an unknown, expired or someone else's task: -32602, the same for all
    three, so a client cannot probe which ids exist."""
    return JsonRpcError(
        INVALID_PARAMS, f"Failed to retrieve task: Task not found ({task_id!r})", {"taskId": task_id}
    )


def task_wire(record: TaskRecord) -> dict[str, Any]:
    """The 2025-11-25 ``Task`` of a record (``tasks/get`` result, ``CreateTaskResult.task``, status
    notification params): ms and ISO 8601 on the wire; ``ttl`` is null for unlimited."""
    wire: dict[str, Any] = {
        "taskId": record.task_id,
        "status": record.status.value,
        "createdAt": iso_timestamp(record.created_at),
        "lastUpdatedAt": iso_timestamp(record.updated_at),
        "ttl": to_ms(record.ttl),
    }
    if record.status_message is not None:
        wire["statusMessage"] = record.status_message
    if record.poll_interval is not None:
        wire["pollInterval"] = to_ms(record.poll_interval)
    return wire


# ---- 2026-07-28: the tasks extension (SEP-2663) -----------------------------------------------------

#: The extension's id: advertised under ``capabilities.extensions``, declared by clients in
#: ``_meta["io.modelcontextprotocol/clientCapabilities"].extensions`` on each request.
TASKS_EXTENSION: Final = "io.modelcontextprotocol/tasks"


def declares_tasks_extension(client_capabilities: Mapping[str, Any]) -> bool:
    extensions = client_capabilities.get("extensions")
    return isinstance(extensions, Mapping) and extensions.get(TASKS_EXTENSION) is not None


def missing_tasks_extension(what: str) -> JsonRpcError:
    """-32021 (SEP-2575 Missing Required Client Capability) naming the tasks extension."""
    return JsonRpcError(
        MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"{what} needs the {TASKS_EXTENSION} extension: declare it in "
        "_meta['io.modelcontextprotocol/clientCapabilities'].extensions",
        {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
    )


def task_wire_v2(record: TaskRecord) -> dict[str, Any]:
    """The SEP-2663 ``Task`` fields (flat; ``ttlMs``/``pollIntervalMs`` in integer milliseconds)."""
    wire: dict[str, Any] = {
        "taskId": record.task_id,
        "status": record.status.value,
        "createdAt": iso_timestamp(record.created_at),
        "lastUpdatedAt": iso_timestamp(record.updated_at),
        "ttlMs": to_ms(record.ttl),
    }
    if record.status_message is not None:
        wire["statusMessage"] = record.status_message
    if record.poll_interval is not None:
        wire["pollIntervalMs"] = max(1, to_ms(record.poll_interval) or 1)
    return wire


def create_task_result_v2(record: TaskRecord) -> dict[str, Any]:
    """The flat ``CreateTaskResult`` a task tool's ``tools/call`` answers.

    It carries an empty ``content``: the core 2026-07-28 schema (which the extension extends) requires
    ``content`` on every ``tools/call`` result, and ``[]`` keeps the answer valid under both schemas
    without pretending to be the tool's output (that comes inlined on ``tasks/get``).
    """
    return {"resultType": "task", **task_wire_v2(record), "content": []}


def detailed_task_v2(record: TaskRecord, decode: Any) -> dict[str, Any]:
    """``tasks/get``: the task, with its ``result`` (completed), ``error`` (failed) or pending
    ``inputRequests`` (input_required) inlined; ``decode`` turns the record's bytes back into values."""
    wire: dict[str, Any] = {"resultType": "complete", **task_wire_v2(record)}
    if record.status.value == "completed" and record.result is not None:
        wire["result"] = decode(record.result)
    elif record.status.value == "failed" and record.error is not None:
        wire["error"] = decode(record.error)
    elif record.status.value == "input_required" and record.input_request is not None:
        wire["inputRequests"] = decode(record.input_request)
    return wire
