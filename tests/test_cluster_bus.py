"""Events cross nodes on one Redis, and never cross sessions (issue 11, the cluster-wide event bus).

Two or three servers ("nodes") run in this process on one private redis-server under one key prefix,
each with its *own* ``Server`` object, so an event can only reach another node through Redis. A
client's GET stream is opened on a node other than the one where its session subscribed or where the
event is raised, as a round-robin load balancer does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from mcpvisor.backends import RedisSessionStore, decode
from mcpvisor.runtime.protocol import Notification
from mcpvisor.runtime.server import Context, Server, start_server
from mcpvisor.runtime.transports.memory import MemoryClient, open_memory_client
from mcpvisor.runtime.tree._cluster_bus import BusEvent
from mcpvisor.runtime.tree._session_settings import SETTINGS_KEY


def make_app() -> Server:
    """A fresh Server per node: nodes share nothing in this process but Redis."""
    app = Server("cluster-tests")

    @app.resource("memo://a")
    async def memo_a() -> str:
        return "a"

    @app.resource("memo://b")
    async def memo_b() -> str:
        return "b"

    @app.tool()
    async def touch(ctx: Context, uri: str) -> str:
        app.notify_resource_updated(uri)
        return uri

    @app.tool()
    async def counter(ctx: Context) -> int:
        return int(await ctx.update_state("n", lambda n: (n or 0) + 1))

    return app


@asynccontextmanager
async def nodes(url: str, prefix: str, count: int, names: str = "n") -> AsyncIterator[list[Any]]:
    """``count`` nodes named ``{names}0``, ``{names}1``, ...: two live nodes never share a name."""
    async with AsyncExitStack() as stack:
        running = []
        for i in range(count):
            store = RedisSessionStore(url, prefix=prefix)
            stack.push_async_callback(store.aclose)
            node = await stack.enter_async_context(
                start_server(make_app(), session_state_store=store, node_id=f"{names}{i}")
            )
            running.append(node)
        yield running


@asynccontextmanager
async def client_on(node: Any, session_id: str | None = None) -> AsyncIterator[MemoryClient]:
    """A client of ``node``: a new session, or ``session_id`` resumed there (another node's)."""
    if session_id is None:
        async with open_memory_client(node, close=False) as client:
            yield client
        return
    assert await node.resume_session(session_id)
    async with open_memory_client(node, initialize=False, close=False) as client:
        client.session_id = session_id
        yield client


def updated(client: MemoryClient) -> list[str]:
    return [
        n.params["uri"]
        for n in client.notifications
        if n.method == "notifications/resources/updated" and n.params is not None
    ]


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll: the effect is another node's, reached through Redis (no event to wait on here)."""
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_resources_updated_reaches_a_stream_on_another_node_and_no_other_session(
    redis_server: str, redis_prefix: str
) -> None:
    async with (
        nodes(redis_server, redis_prefix, 3) as (a, b, c),
        client_on(a) as one_a,
        client_on(a) as two_a,
        # The clients' GET streams are on B, opened before they subscribe (through A).
        client_on(b, one_a.session_id) as one_b,
        client_on(b, two_a.session_id) as two_b,
        client_on(c) as other,  # the events are raised on C, which serves neither session
    ):
        one_b.listen()
        two_b.listen()
        await one_a.request("resources/subscribe", {"uri": "memo://a"})
        await two_a.request("resources/subscribe", {"uri": "memo://b"})
        await trio.sleep(0.2)  # the subscriptions' mirror events reach B first
        await other.call_tool("touch", {"uri": "memo://a"})
        await other.call_tool("touch", {"uri": "memo://b"})
        await until(lambda: updated(one_b) == ["memo://a"] and updated(two_b) == ["memo://b"])
        await other.call_tool("touch", {"uri": "memo://c"})  # nobody's
        await other.call_tool("touch", {"uri": "memo://b"})
        await until(lambda: updated(two_b) == ["memo://b", "memo://b"])
        assert updated(one_b) == ["memo://a"]  # never another session's event
        assert updated(other) == [] and updated(one_a) == [] and updated(two_a) == []
        assert c.cluster is not None and c.cluster.dropped == 0


async def test_list_changed_reaches_every_session_on_every_node(redis_server: str, redis_prefix: str) -> None:
    async with nodes(redis_server, redis_prefix, 2) as (a, b), client_on(a) as on_a, client_on(b) as on_b:
        on_a.listen()
        on_b.listen()
        await trio.sleep(0.1)
        a.server.remove_tool("counter")  # A's own Server changes: B hears it through Redis
        changed = "notifications/tools/list_changed"
        await until(lambda: any(n.method == changed for n in on_b.notifications))
        await until(lambda: any(n.method == changed for n in on_a.notifications))


async def test_a_message_for_one_session_reaches_its_stream_on_another_node_only(
    redis_server: str, redis_prefix: str
) -> None:
    """The way a task's status or a request's progress travels when the client listens elsewhere."""
    async with (
        nodes(redis_server, redis_prefix, 2) as (a, b),
        client_on(a) as one_a,
        client_on(a) as two_a,
        client_on(b, one_a.session_id) as one_b,
        client_on(b, two_a.session_id) as two_b,
    ):
        one_b.listen()
        two_b.listen()
        await trio.sleep(0.1)
        note = Notification("notifications/message", {"level": "info", "data": "for one"})
        a.deliver_to_owner(f"session:{one_a.session_id}", note)  # the TaskRuntime's hook
        await until(lambda: note in one_b.notifications)
        a.deliver_to_owner(f"session:{two_a.session_id}", Notification("notifications/message", {}))
        await until(lambda: len(two_b.notifications) == 1)
        assert one_b.notifications == [note]
        assert note not in two_b.notifications


async def test_delete_through_one_node_ends_the_get_stream_on_another(
    redis_server: str, redis_prefix: str
) -> None:
    async with nodes(redis_server, redis_prefix, 2) as (a, b), client_on(a) as on_a:
        sid = on_a.session_id
        assert sid is not None
        await on_a.call_tool("counter")
        assert await b.resume_session(sid)
        stream = b.standalone_stream(sid)
        await a.close_session(sid)
        with trio.fail_after(10):
            async with stream:
                async for _ in stream:
                    pass  # ends when B closes it; a hang fails the test
        await until(lambda: not b.has_session(sid))
        assert not await b.resume_session(sid)


async def test_without_redis_the_bus_stays_local(tmp_path: Any) -> None:
    async with start_server(make_app()) as memory:
        assert memory.cluster is None
    async with start_server(make_app(), session_state_store=f"sqlite:///{tmp_path / 's.db'}") as sqlite:
        assert sqlite.cluster is None


async def test_nodes_on_other_prefixes_never_hear_each_other(redis_server: str, redis_prefix: str) -> None:
    async with (
        nodes(redis_server, redis_prefix, 1) as (a,),
        nodes(redis_server, redis_prefix + "x", 1) as (b,),
        client_on(a) as on_a,
        client_on(b) as on_b,
    ):
        on_a.listen()
        on_b.listen()
        await trio.sleep(0.1)
        b.server.remove_tool("counter")
        await until(lambda: len(on_b.notifications) == 1)
        a.server.remove_tool("touch")
        await until(lambda: len(on_a.notifications) == 1)
        assert on_a.notifications[0].method == "notifications/tools/list_changed"
        assert len(on_b.notifications) == 1


def test_bus_events_round_trip_and_junk_is_refused() -> None:
    event = BusEvent(
        "publish", "n1", "resource:x", "", Notification("notifications/resources/updated", {"u": 1})
    )
    assert BusEvent.from_bytes(event.to_bytes()) == event
    for junk in [b"", b"\xc1", b"\x01", BusEvent("ended", "n", session_id="s").to_bytes()[:-1]]:
        with pytest.raises(ValueError):
            BusEvent.from_bytes(junk)
    with pytest.raises(ValueError):
        BusEvent("nonsense", "n")


async def test_a_settings_write_on_one_node_keeps_a_subscription_made_through_another(
    redis_server: str, redis_prefix: str
) -> None:
    """Two nodes serve one session; B's copy of its settings predates A's subscription. B writing a
    log level must not drop it from the store (it used to: the last settings written won whole)."""
    async with (
        nodes(redis_server, redis_prefix, 2) as (a, b),
        client_on(a) as on_a,
        client_on(b, on_a.session_id) as on_b,  # B's actor starts now: no subscriptions yet
    ):
        sid = on_a.session_id
        assert sid is not None
        await on_a.request("resources/subscribe", {"uri": "memo://a"})
        await on_b.request("logging/setLevel", {"level": "error"})
        await on_b.request("resources/subscribe", {"uri": "memo://b"})
        await on_a.request("resources/unsubscribe", {"uri": "memo://b"})
        store = RedisSessionStore(redis_server, prefix=redis_prefix)
        try:
            data = await store.get(sid, SETTINGS_KEY)
        finally:
            await store.aclose()
        assert data is not None
        stored = decode(data)
        assert stored["log_level"] == "error"
        assert stored["subscriptions"] == ["memo://a"]  # B's write kept A's; A's unsubscribe won
