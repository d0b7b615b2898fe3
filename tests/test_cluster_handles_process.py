"""One state handle through real ``mcpvisor demo`` processes on one Redis, behind a round-robin proxy.

The official SDK client in its default mode (``mcp.Client(url)``, the 2026-07-28 era: no session, the
demo's ``counter`` keeps its count behind a state handle) calls ``counter`` with one handle from several
concurrent workers; the proxy sends every request to the next node, so the handle is used through both
nodes at once. Every increment must land exactly once. Then one node is SIGKILLed, and the handle goes
on through the survivor with its count; and with three nodes, one is SIGKILLed while calls are in
flight on it, and no acknowledged count is lost.
"""

from __future__ import annotations

import time

import trio
from _cluster_proxy import open_proxy
from mcp import Client
from mcp.shared.exceptions import MCPError
from test_cluster_kill import is_retryable
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


async def test_a_node_killed_mid_traffic_loses_no_acknowledged_count_and_the_handle_goes_on(
    redis_server: str,
) -> None:
    """Three nodes, one SIGKILLed while the workers' calls are in flight on it. A call cut by the kill
    fails with a retryable error (the proxy's 502, or the stream closed) and is retried; it may have
    counted (ambiguous), so the final count lies in [acknowledged, acknowledged + ambiguous]."""
    extra = ("--state-store", redis_server, "--task-backend", redis_server, "--node-ttl", "1")
    workers, calls, kill_after = 6, 20, 40
    with trio.fail_after(120), demo_processes(*extra, count=3) as ((_, a), (victim, b), (_, c)):
        async with open_proxy([address(a), address(b), address(c)]) as (proxy, url), Client(url) as client:
            first, owner = said(await client.call_tool("counter", {}))
            handle = {"handle": owner.removeprefix("handle ")}
            acked: list[int] = [first]
            ambiguous, hung, other = 0, 0, []
            killed = trio.Event()

            async def worker() -> None:
                nonlocal ambiguous, hung
                for _ in range(calls):
                    for _attempt in range(6):
                        with trio.move_on_after(8.0) as attempt:
                            try:
                                count, seen = said(await client.call_tool("counter", handle))
                            except MCPError as exc:
                                if not is_retryable(exc):
                                    other.append(f"{exc.code} {exc.message}")
                                    return
                                ambiguous += 1
                                continue
                            assert seen == owner
                            acked.append(count)
                            break
                        if attempt.cancelled_caught:
                            hung += 1
                            ambiguous += 1
                    if len(acked) >= kill_after and not killed.is_set():
                        killed.set()
                        victim.kill()  # SIGKILL, by pid, while the other workers' calls are in flight

            async with trio.open_nursery() as nursery:
                for _ in range(workers):
                    nursery.start_soon(worker)
            assert killed.is_set() and victim.poll() is not None
            final, _ = said(await client.call_tool("counter", handle))
            print(
                f"{len(acked)} counts acknowledged, {ambiguous} ambiguous (retried), {hung} hung, final "
                f"{final}; per node: {proxy.stats.requests}, 502s {proxy.stats.bad_gateway}"
            )
            assert other == [] and hung == 0
            assert len(acked) == 1 + workers * calls
            assert len(set(acked)) == len(acked)  # no count handed out twice
            assert len(acked) <= final - 1 <= len(acked) + ambiguous  # none acknowledged was lost
