"""One state handle through two real ``mcpvisor demo`` processes on one Redis, behind a round-robin proxy.

The official SDK client in its default mode (``mcp.Client(url)``, the 2026-07-28 era: no session, the
demo's ``counter`` keeps its count behind a state handle) calls ``counter`` with one handle from several
concurrent workers; the proxy sends every request to the next node, so the handle is used through both
nodes at once. Every increment must land exactly once. Then one node is SIGKILLed, and the handle goes
on through the survivor with its count.
"""

from __future__ import annotations

import time

import trio
from _cluster_proxy import open_proxy
from mcp import Client
from test_cluster_process import demo_processes
from test_state_handles_sdk import said

WORKERS = 6
CALLS = 25  # per worker
AFTER_KILL = 20


def address(url: str) -> tuple[str, int]:
    host, _, port = url.split("//", 1)[1].split("/", 1)[0].rpartition(":")
    return host, int(port)


async def test_one_handle_through_two_nodes_counts_every_call_and_survives_a_kill(redis_server: str) -> None:
    extra = ("--state-store", redis_server, "--task-backend", redis_server, "--node-ttl", "1")
    with trio.fail_after(120), demo_processes(*extra, count=2) as ((victim, a), (_, b)):
        async with open_proxy([address(a), address(b)]) as (proxy, url), Client(url) as client:
            first, owner = said(await client.call_tool("counter", {}))
            assert first == 1 and owner.startswith("handle sh_")
            handle = {"handle": owner.removeprefix("handle ")}
            counts: list[int] = [first]

            async def worker() -> None:
                for _ in range(CALLS):
                    count, seen = said(await client.call_tool("counter", handle))
                    assert seen == owner
                    counts.append(count)

            started = time.monotonic()
            async with trio.open_nursery() as nursery:
                for _ in range(WORKERS):
                    nursery.start_soon(worker)
            elapsed = time.monotonic() - started
            total = 1 + WORKERS * CALLS
            print(
                f"{WORKERS * CALLS} concurrent counter calls through 2 nodes in {elapsed:.2f}s; "
                f"per node: {proxy.stats.requests}"
            )
            assert sorted(counts) == list(range(1, total + 1))  # none lost, none twice
            assert all(n >= 2 for n in proxy.stats.requests.values()) and len(proxy.stats.requests) == 2

            victim.kill()  # SIGKILL, by pid: no orderly stop
            victim.wait(timeout=10)
            after = [said(await client.call_tool("counter", handle)) for _ in range(AFTER_KILL)]
            assert after == [(total + i, owner) for i in range(1, AFTER_KILL + 1)]
