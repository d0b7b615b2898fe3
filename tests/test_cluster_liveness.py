"""Leases in Redis, node liveness, and the settling of a dead node's tasks (issue 11, tasks).

A "dead node" is one whose liveness lease expired with task markers left in the shared task backend,
exactly what a SIGKILLed process leaves behind; here it is written by hand, so the test controls which
node is dead and which is alive. The multi-process kill test (wt/cluster) kills real processes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from mcpvisor.backends import RedisSessionStore, RedisTaskBackend, TaskRecord, TaskStatus
from mcpvisor.backends._codec import decode
from mcpvisor.backends._redis_connection import RedisConnection
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.tree._cluster_lease import Leases
from mcpvisor.runtime.tree._cluster_liveness import NodeIdInUse
from mcpvisor.supervisors import ChildStartError


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[RedisConnection]:
    conn = RedisConnection(url, owner="test")
    try:
        yield conn
    finally:
        await conn.aclose()


async def test_two_racing_acquirers_get_exactly_one_lease(redis_server: str, redis_prefix: str) -> None:
    async with connection(redis_server) as one, connection(redis_server) as two:
        leases = [Leases(one, "{" + redis_prefix + "}"), Leases(two, "{" + redis_prefix + "}")]
        won: list[str] = []

        async def take(i: int) -> None:
            if await leases[i % 2].acquire("session:s1", f"node{i}", 5.0):
                won.append(f"node{i}")

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(take, i)
        assert len(won) == 1
        winner = won[0]
        assert await leases[0].holder("session:s1") == winner
        assert await leases[1].acquire("session:s1", winner, 5.0)  # its own: renewed, still one
        assert not await leases[0].release("session:s1", "someone-else")
        assert not await leases[0].renew("session:s1", "someone-else", 5.0)
        assert await leases[1].release("session:s1", winner)
        assert await leases[0].holder("session:s1") is None


async def test_acquire_or_holder_gives_one_winner_and_everyone_else_the_winner(
    redis_server: str, redis_prefix: str
) -> None:
    """The claim of a session (``Ownership.claim``): one round trip answers "yours" or "node X's"."""
    async with connection(redis_server) as one, connection(redis_server) as two:
        leases = [Leases(one, "{" + redis_prefix + "}"), Leases(two, "{" + redis_prefix + "}")]
        answers: dict[str, str | None] = {}

        async def claim(i: int) -> None:
            answers[f"node{i}"] = await leases[i % 2].acquire_or_holder("session:s2", f"node{i}", 5.0)

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(claim, i)
        winners = [node for node, holder in answers.items() if holder is None]
        assert len(winners) == 1
        assert {holder for node, holder in answers.items() if node != winners[0]} == {winners[0]}
        assert await leases[0].acquire_or_holder("session:s2", winners[0], 5.0) is None  # its own: renewed
        assert await leases[1].release("session:s2", winners[0])
        assert await leases[1].acquire_or_holder("session:s2", "late", 5.0) is None  # free again: taken


async def test_a_lease_nobody_renews_expires_and_another_takes_it(
    redis_server: str, redis_prefix: str
) -> None:
    async with connection(redis_server) as conn:
        leases = Leases(conn, "{" + redis_prefix + "}")
        assert await leases.acquire("x", "dead", 0.2)
        assert not await leases.acquire("x", "alive", 5.0)
        await trio.sleep(0.4)
        assert not await leases.renew("x", "dead", 5.0)  # too late: it expired
        assert await leases.acquire("x", "alive", 5.0)
        with pytest.raises(ValueError, match="positive"):
            await leases.acquire("y", "h", 0)


async def leave_running_task(backend: RedisTaskBackend, node: str, task_id: str) -> None:
    """What a node killed mid-task leaves: a working task and its node's running marker."""
    now = time.time()
    await backend.create(TaskRecord(task_id, "session:abc", created_at=now, updated_at=now, ttl=3600))
    owner = f"mcpvisor:running:{node}"
    await backend.create(TaskRecord(f"running:{task_id}", owner, created_at=now, updated_at=now, ttl=3600))


@asynccontextmanager
async def node(url: str, prefix: str, name: str, ttl: float = 0.6) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:
        store = RedisSessionStore(url, prefix=prefix)
        tasks = RedisTaskBackend(url, prefix=prefix)
        stack.push_async_callback(store.aclose)
        stack.push_async_callback(tasks.aclose)
        running = await stack.enter_async_context(
            start_server(
                Server("liveness"), session_state_store=store, task_backend=tasks, node_id=name, node_ttl=ttl
            )
        )
        yield running


async def test_a_dead_nodes_tasks_are_failed_by_a_survivor_and_readable_everywhere(
    redis_server: str, redis_prefix: str
) -> None:
    backend = RedisTaskBackend(redis_server, prefix=redis_prefix)
    async with connection(redis_server) as conn:
        p = "{" + redis_prefix + "}"
        leases = Leases(conn, p)
        # "ghost" died (no lease); "alive" is a live node of another process (its lease held).
        for name, task_id in [("ghost", "t-ghost"), ("alive", "t-alive")]:
            await leave_running_task(backend, name, task_id)
            await conn.script("redis.call('SADD', KEYS[1], ARGV[1]) return 1", [f"{p}:nodes"], [name])
        assert await leases.acquire("node:alive", "alive/other-process", 30.0)
        async with node(redis_server, redis_prefix, "b") as b, node(redis_server, redis_prefix, "c") as c:
            with trio.fail_after(10):
                # polling the store: the survivor's sweep is another actor's, with nothing to wait on
                while (await backend.get("t-ghost")).status is not TaskStatus.FAILED:  # type: ignore[union-attr]  # noqa: ASYNC110
                    await trio.sleep(0.05)
            record = await backend.get("t-ghost")
            assert record is not None and record.status_message is not None
            assert "(node ghost)" in record.status_message and record.error is not None
            assert "ghost" in decode(record.error)["message"]
            assert (b.liveness.settled + c.liveness.settled) == ["ghost"]  # exactly one survivor did it
            await trio.sleep(1.0)  # several more rounds
            alive = await backend.get("t-alive")
            assert alive is not None and alive.status is TaskStatus.WORKING  # a live node's: untouched
            assert await backend.get("running:t-ghost") is None  # its marker went with it
            # The failure is a stored record: every node reads the same (the same backend).
            for running in (b, c):
                assert running.liveness.node_id in ("b", "c")
    await backend.aclose()


async def test_a_second_process_with_the_same_node_id_refuses_to_start(
    redis_server: str, redis_prefix: str
) -> None:
    async with node(redis_server, redis_prefix, "same", ttl=5.0):
        with pytest.raises(ChildStartError) as caught:
            async with node(redis_server, redis_prefix, "same", ttl=5.0):
                pass  # pragma: no cover
        assert isinstance(caught.value.__cause__, NodeIdInUse)
        assert "in use by another live process" in str(caught.value.__cause__)


async def test_an_orderly_stop_releases_the_lease(redis_server: str, redis_prefix: str) -> None:
    async with connection(redis_server) as conn:
        leases = Leases(conn, "{" + redis_prefix + "}")
        async with node(redis_server, redis_prefix, "n1", ttl=5.0):
            assert (await leases.holder("node:n1") or "").startswith("n1/")
        assert await leases.holder("node:n1") is None


async def test_a_node_whose_lease_lapsed_is_listed_again_so_its_later_death_is_settled(
    redis_server: str, redis_prefix: str
) -> None:
    """A node stalled past its ttl (a loaded machine) is settled as dead and taken off the node list;
    when it comes back and takes its lease again it must list itself again, or the tasks it starts
    afterwards stay ``working`` for ever once it really dies (nobody looks for its markers)."""
    backend = RedisTaskBackend(redis_server, prefix=redis_prefix)
    p = "{" + redis_prefix + "}"
    async with connection(redis_server) as conn, node(redis_server, redis_prefix, "b") as b:
        leases = Leases(conn, p)
        async with node(redis_server, redis_prefix, "a") as a:
            with trio.fail_after(10):
                while "a" not in b.liveness.settled:  # the stall: a's lease gone before it renews
                    await conn.script("redis.call('DEL', KEYS[1]) return 1", [leases.key("node:a")], [])
                    await trio.sleep(0.05)
                while not (await leases.holder("node:a") or "").startswith("a/"):  # noqa: ASYNC110
                    await trio.sleep(0.05)  # a's next round: it took its lease again
                await trio.sleep(0.5)  # a few more rounds of both
            members = await conn.script("return redis.call('SMEMBERS', KEYS[1])", [f"{p}:nodes"], [])
            assert b"a" in members, members  # listed again
            await leave_running_task(backend, "a", "t-after-the-stall")
            assert a.liveness.node_id == "a"
        # a stopped (its lease released): b settles what it left, as after any stop.
        with trio.fail_after(10):
            while (await backend.get("t-after-the-stall")).status is not TaskStatus.FAILED:  # type: ignore[union-attr]  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert b.liveness.settled.count("a") == 2
    await backend.aclose()


async def test_a_node_id_that_dies_again_soon_is_settled_by_another_survivor_at_once(
    redis_server: str, redis_prefix: str
) -> None:
    """The ``sweep:<node>`` lease guards one settling, not the minute after it: when node ``a``
    dies, survivor ``c`` settles it and goes away; ``a`` comes back under its id and dies again, and
    survivor ``b`` must settle it at once (it used to wait for ``c``'s sweep lease to expire)."""
    backend = RedisTaskBackend(redis_server, prefix=redis_prefix)
    async with node(redis_server, redis_prefix, "c") as c:
        async with node(redis_server, redis_prefix, "a"):
            pass  # a's first life: stopped, so c settles it
        with trio.fail_after(10):
            while "a" not in c.liveness.settled:  # noqa: ASYNC110
                await trio.sleep(0.05)
    async with node(redis_server, redis_prefix, "b") as b:
        async with node(redis_server, redis_prefix, "a"):
            await leave_running_task(backend, "a", "t-second-life")
        with trio.fail_after(5):  # far less than the sweep lease's 60 s
            while (await backend.get("t-second-life")).status is not TaskStatus.FAILED:  # type: ignore[union-attr]  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert "a" in b.liveness.settled
    await backend.aclose()
