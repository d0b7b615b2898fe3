"""One live owner per session on one Redis: forwarding to the owner, and takeover (issue 11).

Nodes run in this process on one private redis-server, each with its own ``Server``. A node that
does not own a session forwards its requests to the owner through Redis; when the owner has stopped,
exactly one of the nodes racing for the session takes it over, and no value is lost.
"""

from __future__ import annotations

import itertools
from typing import Any

import trio
from mcpvisor.runtime.protocol import Notification
from mcpvisor.runtime.server import Context
from test_cluster_bus import client_on, nodes


def text(result: Any) -> str:
    return str(result["content"][0]["text"])


async def test_requests_through_another_node_run_on_the_owner_only(
    redis_server: str, redis_prefix: str
) -> None:
    async with nodes(redis_server, redis_prefix, 2) as (a, b), client_on(a) as on_a:
        sid = on_a.session_id
        assert sid is not None
        async with client_on(b, sid) as on_b:
            counts = []
            for client in (on_a, on_b, on_a, on_b, on_b):
                counts.append(text(await client.call_tool("counter")))
            assert counts == ["1", "2", "3", "4", "5"]
            assert a.has_session(sid) and not b.has_session(sid)  # one live actor: the owner's
            assert b.ownership.remote == {sid: "n0"} and b.ownership.forwarded >= 3
            assert a.ownership.served >= 3 and sid in a.ownership.owned


async def test_progress_of_a_forwarded_request_streams_back(redis_server: str, redis_prefix: str) -> None:
    async with nodes(redis_server, redis_prefix, 2) as (a, b):
        for node in (a, b):

            @node.server.tool()
            async def steps(ctx: Context, n: int = 3) -> str:
                for i in range(1, n + 1):
                    await ctx.report_progress(i, n)
                return "done"

        async with client_on(a) as on_a, client_on(b, on_a.session_id) as on_b:
            seen: list[Notification] = []
            result = await on_b.call_tool("steps", {"n": 3}, progress_token="p1", on_notification=seen.append)
            assert text(result) == "done"
            progress = [
                n.params["progress"] for n in seen if n.method == "notifications/progress" and n.params
            ]
            assert progress == [1, 2, 3]
            assert not b.has_session(on_a.session_id or "")


async def test_two_nodes_taking_over_one_session_at_once_one_wins_and_no_value_is_lost(
    redis_server: str, redis_prefix: str
) -> None:
    async with nodes(redis_server, redis_prefix, 2) as (b, c):
        async with nodes(redis_server, redis_prefix, 1, names="first") as (a,), client_on(a) as on_a:
            sid = on_a.session_id
            assert sid is not None
            assert text(await on_a.call_tool("counter")) == "1"
        # A stopped in an orderly way: its lease is released, the session stays in the store.
        assert await b.ownership.leases.holder(f"session:{sid}") is None
        counts: list[int] = []

        async def count_through(node: Any, first_id: int) -> None:
            async with client_on(node, sid) as client:
                client._ids = itertools.count(first_id)  # one session, one id space: as one client's
                for _ in range(15):
                    counts.append(int(text(await client.call_tool("counter"))))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(count_through, b, 1000)
            nursery.start_soon(count_through, c, 2000)
        assert sorted(counts) == list(range(2, 32))  # every increment landed once: none lost
        owners = [node for node in (b, c) if node.has_session(sid)]
        assert len(owners) == 1  # exactly one took it over; the other forwarded to it
        holder = await b.ownership.leases.holder(f"session:{sid}")
        assert holder == owners[0].node_id
