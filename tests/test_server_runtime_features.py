"""Runtime features beyond the lifecycle: the state path, server-to-client requests, log levels,
subscriptions and list_changed, closing, and answers the runtime guarantees."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from _runtime_app import app
from mcpvisor.backends import MemorySessionStore
from mcpvisor.backends._startup_check import PROBE_SESSION_ID
from mcpvisor.runtime.actors import ActorExited
from mcpvisor.runtime.protocol import ErrorResponse, JsonRpcError, Message, Request, Response
from mcpvisor.runtime.server import Context, Server, SessionBusy, UnknownSession, start_server
from mcpvisor.runtime.transports.memory import open_memory_client


def text_of(result: Mapping[str, Any]) -> str:
    return str(result["content"][0]["text"])


class RecordingStore(MemorySessionStore):
    """Remembers which task ran each operation, and for which session."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[trio.lowlevel.Task] = []
        self.probes: list[trio.lowlevel.Task] = []  # the start-up check's, before any actor runs

    def _record(self, session_id: str) -> None:
        task = trio.lowlevel.current_task()
        (self.probes if session_id == PROBE_SESSION_ID else self.tasks).append(task)

    async def get(self, session_id: str, key: str) -> bytes | None:
        self._record(session_id)
        return await super().get(session_id, key)

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._record(session_id)
        await super().put(session_id, key, value, ttl=ttl)


async def test_every_state_operation_runs_in_the_state_store_server() -> None:
    store = RecordingStore()
    async with start_server(app, session_state_store=store) as running:
        async with open_memory_client(running) as one, open_memory_client(running) as two:
            before = running.store.operations
            await one.call_tool("counter")
            await two.call_tool("counter")
            await one.call_tool("counter")
            assert running.store.operations - before == 6  # a get and a put per call
        actor = running.registry.whereis("state_store")
        assert actor is not None
        assert store.tasks and {id(t) for t in store.tasks} == {id(actor._task)}
        # The start-up check ran once (a put and a get), before the tree, from the starting task.
        assert len(store.probes) == 2 and id(actor._task) not in {id(t) for t in store.probes}


async def test_state_keys_of_the_runtime_are_reserved() -> None:
    server = Server("reserved")

    @server.tool()
    async def sneaky(ctx: Context) -> str:
        return str(await ctx.get_state("__mcpvisor__/session"))

    async with start_server(server) as running, open_memory_client(running) as client:
        with pytest.raises(JsonRpcError) as info:
            await client.call_tool("sneaky")
        assert "reserved for the runtime" in info.value.message


async def test_elicitation_round_trip_through_the_session() -> None:
    async def answer(method: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        assert method == "elicitation/create" and params["message"] == "name?"
        return {"action": "accept", "content": {"name": "Ada"}}

    async with start_server(app) as running:
        async with open_memory_client(running, capabilities={"elicitation": {}}, on_request=answer) as client:
            assert text_of(await client.call_tool("ask")) == "Ada"
        async with open_memory_client(running) as client:
            with pytest.raises(JsonRpcError) as info:
                await client.call_tool("ask")
            assert info.value.code == -32021


async def test_log_level_filters_and_survives_a_restart() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        await client.call_tool("chatty")
        assert client.notifications == []  # no level set: no log notifications
        await client.request("logging/setLevel", {"level": "error"})
        for _ in range(2):
            client.notifications.clear()
            await client.call_tool("chatty")
            levels = [n.params["level"] for n in client.notifications if n.params is not None]
            assert levels == ["error"]
            with pytest.raises(JsonRpcError):
                await client.call_tool("crash")  # the level is persisted: same filter after restart


async def test_subscriptions_and_list_changed_reach_the_standalone_stream() -> None:
    server = Server("events")

    @server.resource("memo://a")
    async def memo() -> str:
        return "a"

    async with (
        start_server(server) as running,
        open_memory_client(running) as client,
        open_memory_client(running) as other,
    ):
        client.listen()
        other.listen()
        await client.request("resources/subscribe", {"uri": "memo://a"})
        assert await running.notify_resource_updated("memo://a") == 1
        assert await running.notify_resource_updated("memo://b") == 0
        await trio.testing.wait_all_tasks_blocked()
        assert [n.method for n in client.notifications] == ["notifications/resources/updated"]
        assert other.notifications == []

        @server.tool()
        async def added() -> str:
            return "new"

        await trio.testing.wait_all_tasks_blocked()
        assert client.notifications[-1].method == "notifications/tools/list_changed"
        assert other.notifications[-1].method == "notifications/tools/list_changed"


async def test_a_closed_session_is_unsubscribed_and_one_that_never_subscribed_is_not_asked() -> None:
    # The end of a session unsubscribes it from the event bus only if it ever subscribed (most
    # sessions never do, and skip that call): both halves checked.
    server = Server("events")

    @server.resource("memo://a")
    async def memo() -> str:
        return "a"

    async with start_server(server) as running:
        async with open_memory_client(running) as client:
            await client.request("resources/subscribe", {"uri": "memo://a"})
            assert await running.notify_resource_updated("memo://a") == 1
        assert await running.notify_resource_updated("memo://a") == 0  # the close unsubscribed it
        async with open_memory_client(running) as client:
            (slot,) = running.sessions.slots.values()
            assert not slot.subscribed
        async with open_memory_client(running) as client:
            await client.request("resources/subscribe", {"uri": "memo://a"})
            (slot,) = running.sessions.slots.values()
            assert slot.subscribed


async def test_a_handler_notifies_subscribers_of_a_resource_it_changed() -> None:
    server = Server("notes")
    notes = {"today": "nothing yet"}

    @server.resource("note://today")
    async def today() -> str:
        return notes["today"]

    @server.tool()
    async def write(text: str) -> str:
        notes["today"] = text
        server.notify_resource_updated("note://today")
        return "saved"

    @server.tool()
    def write_sync(text: str) -> str:  # runs on a worker thread: the notice hops back to trio
        notes["today"] = text
        server.notify_resource_updated("note://today")
        return "saved"

    async with (
        start_server(server) as running,
        open_memory_client(running) as watcher,
        open_memory_client(running) as writer,
    ):
        watcher.listen()
        writer.listen()
        await watcher.request("resources/subscribe", {"uri": "note://today"})
        await writer.call_tool("write", {"text": "milk"})
        await writer.call_tool("write_sync", {"text": "eggs"})
        await trio.testing.wait_all_tasks_blocked()
        updates = [n.params for n in watcher.notifications if n.method == "notifications/resources/updated"]
        assert updates == [{"uri": "note://today"}, {"uri": "note://today"}]
        assert writer.notifications == []  # not subscribed
    server.notify_resource_updated("note://today")  # no server running: nobody to tell, no error


async def test_close_session_answers_in_flight_and_drops_values() -> None:
    store = MemorySessionStore()
    async with (
        start_server(app, session_state_store=store) as running,
        open_memory_client(running, close=False) as client,
    ):
        sid = client.session_id
        assert sid is not None
        await client.call_tool("counter")
        send, receive = trio.open_memory_channel[Message](math.inf)
        await running.submit(sid, Request("w", "tools/call", {"name": "wait"}), send)
        await trio.testing.wait_all_tasks_blocked()
        await running.close_session(sid)
        await running.close_session(sid)  # idempotent
        finals = [m async for m in receive if isinstance(m, Response | ErrorResponse)]
        assert len(finals) == 1 and isinstance(finals[0], ErrorResponse)
        assert "session closed" in finals[0].error.message
        assert not running.has_session(sid)
        assert await store.keys(sid) == []
        with pytest.raises(UnknownSession):
            await client.call_tool("counter")


async def test_duplicate_in_flight_request_id_is_refused() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        assert client.session_id is not None
        first, _first_rx = trio.open_memory_channel[Message](math.inf)
        await running.submit(client.session_id, Request(7, "tools/call", {"name": "wait"}), first)
        second, second_rx = trio.open_memory_channel[Message](math.inf)
        await running.submit(client.session_id, Request(7, "ping"), second)
        (reply,) = [m async for m in second_rx]
        assert isinstance(reply, ErrorResponse) and reply.error.code == -32600


async def test_requests_of_one_session_run_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        began = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(client.call_tool, "wait", {"seconds": 10})
        assert trio.current_time() - began == pytest.approx(10)  # not 30: each request is its own task


async def test_shutdown_answers_in_flight_requests() -> None:
    send, receive = trio.open_memory_channel[Message](math.inf)
    send2, receive2 = trio.open_memory_channel[Message](math.inf)
    async with start_server(app) as running, open_memory_client(running, close=False) as client:
        assert client.session_id is not None
        await running.submit(client.session_id, Request("w", "tools/call", {"name": "wait"}), send)
        stateless = {
            "name": "wait",
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        }
        await running.submit(None, Request("s", "tools/call", stateless), send2)
        await trio.testing.wait_all_tasks_blocked()
    for rx in (receive, receive2):
        finals = [m async for m in rx if isinstance(m, Response | ErrorResponse)]
        assert len(finals) == 1 and isinstance(finals[0], ErrorResponse)
        assert finals[0].error.code == -32603


async def test_stateless_overload_is_session_busy() -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    async with start_server(app, max_stateless_requests=1) as running:
        send, _rx = trio.open_memory_channel[Message](math.inf)
        await running.submit(None, Request(1, "tools/call", {"name": "wait", "_meta": meta}), send)
        send2, _rx2 = trio.open_memory_channel[Message](math.inf)
        with pytest.raises(SessionBusy) as info:
            await running.submit(None, Request(2, "tools/list", {"_meta": meta}), send2)
        assert info.value.session_id is None


class ExpiryCountingStore(MemorySessionStore):
    def __init__(self) -> None:
        super().__init__(default_ttl=10, clock=trio.current_time)
        self.removed: list[int] = []

    async def expire(self) -> int:
        removed = await super().expire()
        self.removed.append(removed)
        return removed


async def test_janitor_sweeps_expired_values(autojump_clock: trio.testing.MockClock) -> None:
    store = ExpiryCountingStore()
    async with (
        start_server(app, session_state_store=store, expire_interval=5) as running,
        open_memory_client(running, close=False) as client,
    ):
        await client.call_tool("counter")
        await trio.sleep(16)
        # the value and the session's settings were past their 10 s TTL and swept
        assert sum(store.removed) == 2 and len(store.removed) == 3


async def test_max_sessions_is_session_busy() -> None:
    async with start_server(app, max_sessions=1) as running:
        await running.create_session()
        with pytest.raises(SessionBusy):
            await running.create_session()
        assert len(running.session_ids()) == 1


async def test_a_state_store_server_crash_restarts_the_rest_of_the_tree() -> None:
    store = MemorySessionStore()
    async with start_server(app, session_state_store=store) as running:
        async with open_memory_client(running, close=False) as old:
            await old.call_tool("counter")
            sid = old.session_id
            assert sid is not None
            actor = running.registry.whereis("state_store")
            assert actor is not None
            with pytest.raises(ActorExited):
                await actor.call("not a store operation")  # crashes the StateStoreServer
            await trio.testing.wait_all_tasks_blocked()
            assert running.tree_ready()
            assert running.registry.whereis("state_store") not in (None, actor)
            # rest_for_one: the sessions were restarted away, values and settings stay stored
            assert not running.has_session(sid)
            assert await store.get(sid, "n") is not None
        async with open_memory_client(running) as fresh:
            assert text_of(await fresh.call_tool("counter")) == "1"
        # the next request naming the old session resumes it (as the HTTP transport does)
        assert await running.resume_session(sid)
        async with open_memory_client(running, initialize=False) as resumed:
            resumed.session_id = sid
            assert text_of(await resumed.call_tool("counter")) == "2"


async def test_busy_sessions_are_not_idle(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        start_server(app, session_idle_timeout=10) as running,
        open_memory_client(running, close=False) as client,
    ):
        sid = client.session_id
        assert sid is not None
        began = trio.current_time()
        await client.call_tool("wait", {"seconds": 25})  # busy past the lifetime
        assert running.has_session(sid)
        await trio.sleep(9)
        assert running.has_session(sid)
        await trio.sleep(2)
        assert not running.has_session(sid)
        assert trio.current_time() - began == pytest.approx(36)


async def test_the_idle_heap_stays_proportional_to_live_sessions() -> None:
    async with start_server(app) as running:
        keep = await running.create_session()
        for _ in range(300):
            await running.close_session(await running.create_session())
        assert running.session_ids() == [keep]
        assert len(running._reaper) <= 2 * 1 + 65


async def test_backend_urls_are_owned_and_values_outlive_the_server(tmp_path: Any) -> None:
    from mcpvisor.backends import decode, session_store_from_url

    url = f"sqlite:///{tmp_path}/state.db"
    async with (
        start_server(app, session_state_store=url, task_backend=url) as running,
        open_memory_client(running, close=False) as client,
    ):
        await client.call_tool("counter")
        await client.call_tool("counter")
        sid = client.session_id
        assert sid is not None
    # the server closed the store it built; the file still holds the session's value and settings
    async with session_store_from_url(url) as store:
        data = await store.get(sid, "n")
        assert data is not None and decode(data) == 2
        assert "__mcpvisor__/session" in await store.keys(sid)


async def test_close_sse_stream_is_dropped_in_memory() -> None:
    async with start_server(app) as running, open_memory_client(running) as client:
        result = await client.call_tool("detach", progress_token="t")
        assert text_of(result) == "still here"
        assert [n.method for n in client.notifications] == ["notifications/progress"]


async def test_a_submit_waiting_for_a_restart_learns_the_session_was_closed() -> None:
    async with (
        start_server(app, session_restart_intensity=0) as running,
        open_memory_client(running, close=False) as client,
    ):
        sid = client.session_id
        assert sid is not None
        ref = running.session_actor(sid)
        assert ref is not None
        ref.request_stop(RuntimeError("boom"))  # a crash; intensity 0: the session gives up
        await ref.wait_exit()
        with trio.fail_after(1), pytest.raises(UnknownSession):
            await client.call_tool("counter")


async def test_task_records_go_through_the_task_runtime() -> None:
    from mcpvisor.backends import MemoryTaskBackend, TaskRecord
    from mcpvisor.runtime.tree._task_runtime import CreateTask, GetTask

    backend = MemoryTaskBackend()
    async with start_server(app, task_backend=backend) as running:
        tasks = running.registry.whereis("task_runtime")
        assert tasks is not None
        created = await tasks.call(CreateTask(TaskRecord("t1", owner="s1", created_at=1.0, updated_at=1.0)))
        assert created.version == 1
        assert (await tasks.call(GetTask("t1"))).owner == "s1"
        assert await tasks.call(GetTask("nope")) is None
    assert await backend.get("t1") is not None  # an object backend stays the caller's (not closed)


async def test_a_sync_handler_may_register_a_tool_and_sessions_hear_list_changed() -> None:
    server = Server("sync-registrar")

    @server.tool()
    def register() -> str:  # runs in a worker thread
        @server.tool(name="late")
        async def late() -> str:
            return "late"

        return "registered"

    async with start_server(server) as running, open_memory_client(running) as client:
        client.listen()
        assert text_of(await client.call_tool("register")) == "registered"
        await trio.testing.wait_all_tasks_blocked()
        assert [n.method for n in client.notifications] == ["notifications/tools/list_changed"]
        assert text_of(await client.call_tool("late")) == "late"


async def test_initialize_inside_the_stateless_envelope_is_method_not_found() -> None:
    envelope = {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }
    async with start_server(app) as running:
        send, receive = trio.open_memory_channel[Message](math.inf)
        await running.submit(None, Request(1, "initialize", envelope), send)
        replies = [m async for m in receive]
    assert len(replies) == 1 and isinstance(replies[0], ErrorResponse)
    assert replies[0].error.code == -32601
