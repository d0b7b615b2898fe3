"""Property: under any mix of create / progress / complete / fail / raise / cancel / crash-session /
restart-server / expire steps (MockClock), what the 2025-11-25 wire says about every task follows a
pure model of the status machine, a cancelled or expired task's body has stopped, and a restart marks
what was running failed. Runs on the memory backend, and once on SQLite; it finds a seeded bug (a
cancel that does not stop the body)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcpvisor.backends import MemorySessionStore, MemoryTaskBackend, TaskBackend, TaskStatus
from mcpvisor.backends._sqlite import SQLiteTaskBackend
from mcpvisor.runtime.protocol import JsonRpcError, Request, Response
from mcpvisor.runtime.server import Context, CrashSession, Server, ToolError, start_server
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client
from mcpvisor.runtime.tree._task_runtime import AlreadyTerminal, CancelTask, TaskRecord, TaskRuntime

TTL = 100.0  # seconds, the ttl every task asks for
MAX_TASKS = 5

machine_app = Server("task-machine")
#: key -> the commands for that task's body; key -> whether its body is running
commands: dict[str, trio.MemorySendChannel[str]] = {}
inboxes: dict[str, trio.MemoryReceiveChannel[str]] = {}
alive: dict[str, bool] = {}


@machine_app.tool(task="optional")
async def job(key: str, ctx: Context) -> str:
    alive[key] = True
    try:
        async for command in inboxes[key]:
            if command == "progress":
                await ctx.report_progress(1, 2)
            elif command == "complete":
                return "done"
            elif command == "fail":
                raise ToolError("the job failed")
            elif command == "raise":
                raise RuntimeError("a bug in the job")
            elif command == "ask":  # input_required until the client answers
                await ctx.elicit("Go on?", {"type": "object", "properties": {}})
        return "inbox closed"
    finally:
        alive[key] = False


@machine_app.tool()
async def crash() -> str:
    raise CrashSession("on purpose")


@attrs.define
class Model:
    key: str
    task_id: str
    expires_at: float
    status: str = "working"


OPS = (
    "create",
    "progress",
    "complete",
    "fail",
    "raise",
    "ask",
    "answer",
    "cancel",
    "crash",
    "restart",
    "expire",
)
steps = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, MAX_TASKS - 1)), min_size=1, max_size=20)


async def run_steps(ops: list[tuple[str, int]], make_backend: Any) -> None:
    clock_now = trio.current_time
    backend: TaskBackend = make_backend(clock_now)
    store = MemorySessionStore()
    models: list[Model] = []
    session_id: str | None = None

    def server() -> Any:
        return start_server(
            machine_app,
            session_state_store=store,
            task_backend=backend,
            task_clock=clock_now,
            expire_interval=math.inf,
            session_restart_intensity=1000,
            backend_check_timeout=None,
        )

    async def check(client: MemoryClient, running: Any) -> None:
        await trio.testing.wait_all_tasks_blocked()
        now = trio.current_time()
        for model in models:
            expired = now >= model.expires_at
            try:
                got: Mapping[str, Any] = await client.request("tasks/get", {"taskId": model.task_id})
            except JsonRpcError as exc:
                assert exc.code == -32602
                assert expired, f"{model.key} not found before its ttl"
                assert not alive.get(model.key), f"{model.key} expired but its body still runs"
                continue
            assert not expired, f"{model.key} still there after its ttl"
            assert got["status"] == model.status, (model, got)
            if model.status in ("completed", "failed", "cancelled"):
                assert not alive.get(model.key), f"{model.key} is {model.status} but its body still runs"
        listed = {t["taskId"] for t in (await client.request("tasks/list"))["tasks"]}
        assert listed == {m.task_id for m in models if now < m.expires_at}

    try:
        pending = list(ops)
        while True:
            async with (
                server() as running,
                open_memory_client(
                    running, initialize=session_id is None, close=False, capabilities={"elicitation": {}}
                ) as client,
            ):
                if session_id is None:
                    session_id = client.session_id
                else:
                    assert await running.resume_session(session_id)
                    client.session_id = session_id
                # The body's elicitation requests come on the standalone stream (no tasks/result waits).
                asks = running.standalone_stream(session_id)
                restart = False
                while pending and not restart:
                    op, index = pending.pop(0)
                    live = [m for m in models if m.status == "working" and trio.current_time() < m.expires_at]
                    target = live[index % len(live)] if live else None
                    if op == "create" and len(models) < MAX_TASKS:
                        key = uuid.uuid4().hex
                        send, receive = trio.open_memory_channel[str](math.inf)
                        commands[key], inboxes[key] = send, receive
                        created = await client.request(
                            "tools/call",
                            {"name": "job", "arguments": {"key": key}, "task": {"ttl": int(TTL * 1000)}},
                        )
                        task_id = created["task"]["taskId"]
                        models.append(Model(key, task_id, trio.current_time() + TTL))
                    elif op in ("progress", "complete", "fail", "raise", "ask") and target is not None:
                        commands[target.key].send_nowait(op)
                        if op == "ask":
                            target.status = "input_required"
                        elif op != "progress":
                            target.status = "completed" if op == "complete" else "failed"
                    elif op == "answer":
                        waiting = {m.task_id: m for m in models if m.status == "input_required"}
                        for _ in range(100):
                            try:
                                message = asks.receive_nowait()
                            except trio.WouldBlock:
                                break
                            if not isinstance(message, Request):
                                continue
                            related = (message.params or {})["_meta"]["io.modelcontextprotocol/related-task"]
                            model = waiting.get(related["taskId"])
                            if model is not None and trio.current_time() < model.expires_at:
                                await running.submit(session_id, Response(message.id, {"action": "accept"}))
                                model.status = "working"
                    elif op == "cancel" and models:
                        model = models[index % len(models)]
                        try:
                            answer = await client.request("tasks/cancel", {"taskId": model.task_id})
                        except JsonRpcError as exc:
                            assert exc.code == -32602
                            ended = model.status not in ("working", "input_required")
                            assert ended or trio.current_time() >= model.expires_at
                        else:
                            assert model.status in ("working", "input_required")
                            assert answer["status"] == "cancelled"
                            model.status = "cancelled"
                    elif op == "crash":
                        with pytest.raises(JsonRpcError):
                            await client.call_tool("crash")
                    elif op == "expire":
                        clock = trio.lowlevel.current_clock()
                        assert isinstance(clock, trio.testing.MockClock)
                        clock.jump(TTL / 2)
                        janitor = next(r.handle for r in running.tree.which_children() if r.id == "janitor")
                        await janitor.sweep()
                    elif op == "restart":
                        restart = True
                    await check(client, running)
                if not restart:
                    return
            # The server is gone: whatever was working has lost its body; the next one fails it.
            for model in models:
                if model.status in ("working", "input_required"):
                    model.status = "failed"
    finally:
        if not isinstance(backend, MemoryTaskBackend):
            await backend.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
# Explicit examples run first on every run, so the seeded-bug test below never depends on what the
# random search (or its example database) happens to try.
@example([("create", 0), ("cancel", 0)])
@example([("create", 0), ("ask", 0), ("cancel", 0), ("create", 1)])
def test_tasks_follow_the_model_on_memory(ops: list[tuple[str, int]]) -> None:
    trio.run(run_steps, ops, lambda clock: MemoryTaskBackend(clock=clock), clock=trio.testing.MockClock())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_tasks_follow_the_model_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]]
) -> None:
    path: Path = tmp_path_factory.mktemp("machine") / "tasks.db"
    trio.run(
        run_steps,
        ops,
        lambda clock: SQLiteTaskBackend(str(path), clock=clock),
        clock=trio.testing.MockClock(),
    )


async def _cancel_without_stopping_the_body(self: TaskRuntime, msg: CancelTask) -> Any:
    """The seeded bug: the record says cancelled, but the body is left running."""
    record: TaskRecord | None = await self._lookup(msg.task_id, msg.owner)
    if record is None:
        return None
    if record.status.is_terminal:
        return AlreadyTerminal(record)
    return await self._update(record, status=TaskStatus.CANCELLED, status_message=msg.message)


def test_the_model_finds_a_cancel_that_does_not_stop_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TaskRuntime, "_cancel", _cancel_without_stopping_the_body)
    with pytest.raises(AssertionError, match="its body still runs"):
        test_tasks_follow_the_model_on_memory()
