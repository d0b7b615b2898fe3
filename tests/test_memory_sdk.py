"""The official SDK's ClientSession against the runtime in-process (``open_sdk_streams``)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _runtime_app import app
from mcp import ClientSession
from mcpvisor.runtime.server import start_server
from mcpvisor.runtime.transports.memory import open_sdk_streams


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def test_sdk_session_in_memory_with_state_and_restart() -> None:
    async with start_server(app) as running:
        async with open_sdk_streams(running) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "runtime-tests"
            assert {t.name for t in (await session.list_tools()).tools} >= {"counter", "crash"}
            assert _text(await session.call_tool("counter", {})) == "1"
            with pytest.raises(Exception, match="session crashed"):
                await session.call_tool("crash", {})
            assert _text(await session.call_tool("counter", {})) == "2"
            (sid,) = running.session_ids()
            assert running.session_incarnations(sid) == 2
        assert running.session_ids() == []  # leaving the streams closed the session


async def test_sdk_concurrent_calls_each_get_their_own_answer() -> None:
    # Every request answers straight into the one writer (no per-request pump): answers must still
    # reach the right callers, a slow request must not hold up a fast one, and counts must add up.
    async with (
        start_server(app) as running,
        open_sdk_streams(running) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        got: list[str] = []
        async with trio.open_nursery() as nursery:

            async def slow() -> None:
                got.append("wait:" + _text(await session.call_tool("wait", {"seconds": 0.2})))

            async def fast() -> None:
                for _ in range(20):
                    got.append("counter:" + _text(await session.call_tool("counter", {})))

            async def other() -> None:
                got.append("version:" + _text(await session.call_tool("version", {})))

            nursery.start_soon(slow)
            nursery.start_soon(fast)
            nursery.start_soon(other)
        assert got[-1] == "wait:done"  # the slow one came last, the others did not wait for it
        assert "version:2025-11-25" in got
        assert [g for g in got if g.startswith("counter:")] == [f"counter:{n}" for n in range(1, 21)]


async def test_sdk_cancelled_request_does_not_hold_the_close() -> None:
    # A request the client abandoned (its timeout: the SDK sends notifications/cancelled) gets no
    # answer; leaving the streams afterwards must not wait out the 5 s grace kept for requests that
    # will still be answered.

    async with start_server(app) as running:
        async with open_sdk_streams(running) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            with trio.move_on_after(0.1):
                await session.call_tool("wait", {"seconds": 3600})
            assert _text(await session.call_tool("counter", {})) == "1"
            start = trio.current_time()
        assert trio.current_time() - start < 2.0
        assert running.session_ids() == []


def _raw(message: dict[str, Any]) -> Any:
    """A message as the SDK's write stream carries it (no ClientSession: the test drives the streams)."""
    from mcp import types
    from mcp.shared.message import SessionMessage

    return SessionMessage(types.jsonrpc_message_adapter.validate_python({"jsonrpc": "2.0", **message}))


_INIT = {
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def _call(request_id: int, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": request_id, "method": "tools/call", "params": {"name": tool, "arguments": arguments or {}}}


async def _initialize(read: Any, write: Any, *, subscribe: bool = False) -> None:
    """The handshake every test here starts with, optionally subscribing to ``memo://a``."""
    await write.send(_raw(_INIT))
    assert (await read.receive()).message.id == 0
    await write.send(_raw({"method": "notifications/initialized"}))
    if subscribe:
        await write.send(_raw({"id": 1, "method": "resources/subscribe", "params": {"uri": "memo://a"}}))
        assert (await read.receive()).message.id == 1


async def test_sdk_reader_closed_early_neither_hangs_nor_holds_the_close() -> None:
    # The client closes its read stream with answers unread (one still running for an hour) and then
    # sends one more request: the answers are the reader's to settle, so without a drain taking the
    # reader's place the end of input would wait out the 5 s grace for answers nobody takes out.
    import anyio

    async with start_server(app) as running:
        with trio.fail_after(10):
            async with open_sdk_streams(running) as (read, write):
                await _initialize(read, write)
                await write.send(_raw(_call(1, "wait")))
                for request_id in (2, 3, 4):
                    await write.send(_raw(_call(request_id, "counter")))
                (sid,) = running.session_ids()
                await read.aclose()  # three answers unread, one request still running
                with pytest.raises(anyio.ClosedResourceError):
                    await read.receive()  # a clear error, not a wait for what was dropped
                await write.send(_raw(_call(5, "counter")))  # sent after the reader left
                with trio.fail_after(2):
                    while running.requests_in_flight(sid) != 1:  # noqa: ASYNC110 (a count, no event)
                        await trio.sleep(0.01)  # all but the hour-long wait answered
                start = trio.current_time()
            assert trio.current_time() - start < 2.0  # the close did not wait for the grace
        assert running.session_ids() == []  # the running request ended with its session


async def test_sdk_block_left_with_answers_unread_closes_promptly() -> None:
    # The client leaves the block without reading (nor closing) its read stream: requests still running
    # are given their grace (as over stdio), answered ones are not waited for, nothing is left behind,
    # and a read afterwards says the stream ended instead of hanging.
    import anyio

    async with start_server(app) as running:
        with trio.fail_after(10):
            async with open_sdk_streams(running) as (read, write):
                await write.send(_raw(_INIT))
                await write.send(_raw({"method": "notifications/initialized"}))
                for request_id in (1, 2, 3):
                    await write.send(_raw(_call(request_id, "counter")))
                await write.send(_raw(_call(4, "wait", {"seconds": 0.3})))  # answered within the grace
                (sid,) = running.session_ids()
                with trio.fail_after(2):
                    while running.requests_in_flight(sid) != 1:  # noqa: ASYNC110 (a count, no event)
                        await trio.sleep(0.01)
                start = trio.current_time()
            elapsed = trio.current_time() - start
            assert 0.2 < elapsed < 2.0  # waited for the running request, not for a reader
            assert running.session_ids() == []
            with pytest.raises(anyio.EndOfStream):
                await read.receive()
            with pytest.raises(anyio.ClosedResourceError):
                await write.send(_raw(_call(5, "counter")))


def _events_server() -> tuple[Any, list[Any]]:
    """A server whose ``touch`` tool publishes ``resources/updated`` for ``memo://a`` (a message not
    tied to the request: the session's standalone stream) and then answers."""
    from mcpvisor.runtime.server import Server

    server = Server("events")
    running: list[Any] = []  # filled by the test once started

    @server.resource("memo://a")
    async def memo() -> str:
        return "a"

    @server.tool()
    async def touch() -> str:
        await running[0].notify_resource_updated("memo://a")
        return "touched"

    return server, running


async def test_sdk_standalone_notification_sent_before_an_answer_arrives_before_it() -> None:
    # The session's messages not tied to a request go into the client's read stream from the task
    # that sends them, so they keep their order with the answers: the notification published inside
    # the tool comes before the tool's answer, every time (through a stream and a pump task of its
    # own, it could come after).
    server, holder = _events_server()
    async with start_server(server) as running:
        holder.append(running)
        with trio.fail_after(10):
            async with open_sdk_streams(running) as (read, write):
                await _initialize(read, write, subscribe=True)
                for request_id in range(2, 42):
                    await write.send(_raw(_call(request_id, "touch")))
                    got = [(await read.receive()).message for _ in range(2)]
                    assert [getattr(m, "method", None) for m in got] == [
                        "notifications/resources/updated",
                        None,
                    ]
                    assert got[1].id == request_id


class _Tasks(trio.abc.Instrument):
    """Names of the tasks spawned, and of those that exited, while installed."""

    def __init__(self) -> None:
        self.spawned: list[str] = []
        self.exited: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned.append(task.name)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.exited.append(task.name)


async def test_sdk_session_spawns_no_pump_nor_drain_and_leaves_no_task_behind() -> None:
    # A session opened, used and closed with nothing in flight: the messages not tied to a request need
    # no pump task (they go straight into the read stream), the end needs no drain task (nothing is
    # owed), and every task spawned for the session has exited once the block is left.
    async with start_server(app) as running:
        tasks = _Tasks()
        trio.lowlevel.add_instrument(tasks)
        try:
            async with open_sdk_streams(running) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                assert _text(await session.call_tool("counter", {})) == "1"
        finally:
            trio.lowlevel.remove_instrument(tasks)
        assert running.session_ids() == []
    assert not [name for name in tasks.spawned if "_pump_standalone" in name or "_drain" in name]
    assert sorted(tasks.spawned) == sorted(tasks.exited)


async def test_sdk_reader_closed_with_nothing_in_flight_drains_what_is_sent_later() -> None:
    # The client closes its read stream with nothing in flight (no drain task then), and keeps
    # sending: the drain starts with the first request sent, so its answers neither pile up unread nor
    # hold the close for the 5 s grace (nobody would settle them).
    async with start_server(app) as running:
        with trio.fail_after(10):
            async with open_sdk_streams(running) as (read, write):
                await _initialize(read, write)
                await read.aclose()
                out = read.conn.out
                for request_id in range(1, 6):
                    await write.send(_raw(_call(request_id, "counter")))
                await write.send(_raw(_call(6, "wait", {"seconds": 0.2})))
                (sid,) = running.session_ids()
                with trio.fail_after(2):
                    while running.requests_in_flight(sid) != 0:  # noqa: ASYNC110 (a count, no event)
                        await trio.sleep(0.01)
                await trio.testing.wait_all_tasks_blocked()
                assert out.statistics().current_buffer_used == 0  # taken out, not piled up
                start = trio.current_time()
            assert trio.current_time() - start < 2.0  # the close did not wait for the grace
        assert running.session_ids() == []


async def test_sdk_standalone_backlog_is_bounded_and_stops_when_the_reader_does() -> None:
    # The messages not tied to a request go straight into the read stream, but a reader that falls
    # 256 messages behind loses them (counted), as a GET stream's reader does; answers are never
    # dropped. Once the reader stopped they are not sent at all (not counted: nobody listens).
    server, holder = _events_server()
    async with start_server(server) as running:
        holder.append(running)
        with trio.fail_after(10):
            async with open_sdk_streams(running) as (read, write):
                await _initialize(read, write, subscribe=True)
                for _ in range(300):
                    await running.notify_resource_updated("memo://a")
                assert running.stats.notifications_dropped == 300 - 256
                await write.send(_raw(_call(2, "counter")))  # an answer is never dropped
                got = [(await read.receive()).message for _ in range(257)]
                assert [getattr(m, "method", None) for m in got[:256]] == [
                    "notifications/resources/updated"
                ] * 256
                assert got[256].id == 2
                await read.aclose()
                assert await running.notify_resource_updated("memo://a") == 1  # still subscribed ...
                assert running.stats.notifications_dropped == 300 - 256  # ... but not sent, nor counted
                (slot,) = running.sessions.slots.values()
                assert slot.standalone is None


async def test_sdk_write_stream_closed_ends_the_session_before_the_block_does() -> None:
    # Closing the write stream is the end of input: the session closes then (the task that closes it
    # starts at that moment), not only when the block is left; the reader then sees the end.
    import anyio

    async with start_server(app) as running:
        with trio.fail_after(10):
            async with open_sdk_streams(running) as (read, write):
                await _initialize(read, write)
                await write.send(_raw(_call(1, "counter")))
                assert (await read.receive()).message.id == 1
                assert len(running.session_ids()) == 1
                await write.aclose()
                await write.aclose()  # idempotent
                with pytest.raises(anyio.EndOfStream):
                    await read.receive()  # the session closed: nothing more comes
                assert running.session_ids() == []
                with pytest.raises(anyio.ClosedResourceError):
                    await write.send(_raw(_call(2, "counter")))
