"""The cost of an event crossing nodes through Redis against the same event delivered on its own node.

Two servers ("nodes") in this process on one private redis-server, each with its own ``Server``. One
session is subscribed to a resource; its GET stream is open on node A (local case) or on node B
(remote case); node A raises ``notifications/resources/updated`` and we time until the stream has it.
Both cases run in the same run, interleaved in rounds, and we report medians and the remote/local
ratio (the local case has no Redis hop: it is the single-node baseline). Also the throughput of a burst
of events crossing nodes.

Usage: ``python benchmarks/cluster_bus.py [--rounds 7] [--events 200]``; results in
benchmarks/results/cluster_bus.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio
from _redis_process import log, start_redis
from mcpvisor.backends import RedisSessionStore
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.memory import open_memory_client

RESULTS = Path(__file__).parent / "results" / "cluster_bus.json"


def make_app() -> Server:
    app = Server("bus-bench")

    @app.resource("memo://x")
    async def memo() -> str:
        return "x"

    return app


async def measure(url: str, rounds: int, events: int) -> dict[str, Any]:
    local: list[float] = []
    remote: list[float] = []
    burst_local: list[float] = []
    burst_remote: list[float] = []
    async with AsyncExitStack() as stack:
        nodes = []
        for name in ("a", "b"):
            store = RedisSessionStore(url, prefix="bench-bus")
            stack.push_async_callback(store.aclose)
            nodes.append(
                await stack.enter_async_context(
                    start_server(make_app(), session_state_store=store, node_id=name)
                )
            )
        a, b = nodes
        client = await stack.enter_async_context(open_memory_client(a, close=False))
        await client.request("resources/subscribe", {"uri": "memo://x"})
        sid = client.session_id
        assert sid is not None
        assert await b.resume_session(sid)

        async def one(node: Any, n: int) -> tuple[float, float]:
            """Latency of one event (median of ``n``) and the time for a burst of ``events``."""
            stream = node.standalone_stream(sid)  # the stream moves to ``node``
            times = []
            async with stream:
                # Let the other node's copies of earlier events land, then drop them: only this
                # case's events are timed.
                await trio.sleep(0.5)
                while True:
                    try:
                        stream.receive_nowait()
                    except trio.WouldBlock:
                        break
                for _ in range(n):
                    t0 = time.perf_counter()
                    a.server.notify_resource_updated("memo://x")
                    await stream.receive()
                    times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for _ in range(events):
                    a.server.notify_resource_updated("memo://x")
                for _ in range(events):
                    await stream.receive()
                burst = time.perf_counter() - t0
            return statistics.median(times), burst

        for _ in range(rounds):
            for node, lat, bursts in ((a, local, burst_local), (b, remote, burst_remote)):
                latency, burst = await one(node, 50)
                lat.append(latency)
                bursts.append(burst)
    return {
        "rounds": rounds,
        "events_per_burst": events,
        "local_latency_us": round(statistics.median(local) * 1e6, 1),
        "remote_latency_us": round(statistics.median(remote) * 1e6, 1),
        "remote/local_latency": round(statistics.median(remote) / statistics.median(local), 2),
        "local_events_per_s": round(events / statistics.median(burst_local)),
        "remote_events_per_s": round(events / statistics.median(burst_remote)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=200)  # under a GET stream's buffer (256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        started = start_redis(workdir)
        if started is None:
            sys.exit(1)
        proc, port = started
        try:
            results = trio.run(measure, f"redis://127.0.0.1:{port}/0", args.rounds, args.events)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    log(
        f"event to a GET stream: local {results['local_latency_us']} µs, through Redis to another node "
        f"{results['remote_latency_us']} µs ({results['remote/local_latency']}x); bursts of "
        f"{args.events}: {results['local_events_per_s']:,}/s local, "
        f"{results['remote_events_per_s']:,}/s remote"
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
