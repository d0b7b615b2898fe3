"""Many nodes on one Redis (issue 11): throughput, the cost of a request on a non-owner node, kill recovery.

    .venv/bin/python benchmarks/cluster.py            # a few minutes
    .venv/bin/python benchmarks/cluster.py --quick    # smoke run, under a minute; writes nothing

Everything runs on 127.0.0.1 and is started and stopped by pid (tests/_cluster.py): one private
``redis-server``, server processes ``mcpvisor run benchmarks/_cluster_bench_app.py:server --transport http``
with ``--state-store`` and ``--task-backend`` on it, and the round-robin proxy of the tests
(tests/_cluster_proxy.py, balancing every request, as its own process).

1. **Throughput.** tools/call round trips/s and p50/p99 of ``add`` (no state) and ``counter`` (one atomic
   update) with 1 and 20 sessions, driven by ``_baselines/http_load.py`` (raw asyncio HTTP/1.1, the
   load generator of benchmarks/server.py) against: 1 node direct, 1 node behind the proxy (the
   baseline), 2 nodes behind the proxy. The three take turns round by round; figures are medians of
   the rounds; ratios are against the baseline of the same run. The CPU each process used during the
   runs (from /proc and the load generator's rusage) says what bounds the figures on this machine.
2. **Owner vs other node.** One session opened on node 1, then calls sent straight to node 1 and
   straight to node 2, alternating in rounds: on a build with session ownership (a lease, forwarding
   to the owner) the second is a forwarded request; without it, node 2 runs its own copy of the
   session from the store, and the figure is the cost of that instead. The script says which it saw.
3. **Kill recovery.** Two nodes behind the proxy, 20 sessions calling ``counter`` in a loop; node 2 is
   SIGKILLed; for each session, the time from the kill to the first answer of a request sent after it.
   Several kills (a fresh cluster each), median and p99 over all sessions.

Results go to benchmarks/results/cluster.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks" / "_baselines"))

from _cluster import Cluster, Node, ProxyProcess, start_cluster, start_proxy_process  # noqa: E402
from http_load import Session  # noqa: E402

APP = f"{ROOT / 'benchmarks' / '_cluster_bench_app.py'}:server"
LOAD = ROOT / "benchmarks" / "_baselines" / "http_load.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---- 1. throughput ------------------------------------------------------------------------------------


def run_load(url: str, tool: str, sessions: int, calls: int, warmup: int) -> dict[str, Any]:
    """One round of ``http_load.py calls`` against ``url``; its JSON, plus the CPU it used."""
    before = children_cpu()
    done = subprocess.run(
        [
            sys.executable,
            str(LOAD),
            "calls",
            "--url",
            url,
            "--tool",
            tool,
            "--sessions",
            str(sessions),
            "--calls",
            str(calls),
            "--warmup",
            str(warmup),
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed on {url}: {done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    out["load_cpu_s"] = children_cpu() - before
    return out


def throughput(cluster: Cluster, proxies: dict[str, ProxyProcess], rounds: int, calls: int) -> dict[str, Any]:
    node1 = cluster.nodes[0]
    targets = {
        "1 node direct": node1.url,
        "1 node via proxy": proxies["1"].url,
        "2 nodes via proxy": proxies["2"].url,
    }
    pids = {
        **{n.name: n.process.pid for n in cluster.nodes},
        "proxy(1)": proxies["1"].process.pid,
        "proxy(2)": proxies["2"].process.pid,
    }
    if cluster.redis is not None:
        pids["redis"] = cluster.redis.process.pid
    results: dict[str, Any] = {}
    for tool in ("add", "counter"):
        for sessions in (1, 20):
            per: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            cpu: dict[str, dict[str, float]] = {name: {} for name in targets}
            for r in range(rounds):
                for name, url in targets.items():
                    before = {k: cpu_seconds(p) for k, p in pids.items()}
                    t0 = time.perf_counter()
                    run = run_load(url, tool, sessions, calls, warmup=max(20, calls // 10))
                    wall = time.perf_counter() - t0
                    per[name].append(run)
                    used = {k: cpu_seconds(p) - before[k] for k, p in pids.items()}
                    used["load generator"] = run["load_cpu_s"]
                    for k, v in used.items():
                        cpu[name][k] = cpu[name].get(k, 0.0) + v / wall / rounds  # cores busy, mean
                    log(
                        f"  {tool} x{sessions} round {r + 1}/{rounds} {name:18}: {run['per_s']:7.0f}/s "
                        f"p50 {run['p50_s'] * 1e3:6.2f} ms p99 {run['p99_s'] * 1e3:6.2f} ms"
                    )
            row: dict[str, Any] = {}
            for name, runs in per.items():
                row[name] = {
                    "per_s": statistics.median(x["per_s"] for x in runs),
                    "p50_ms": statistics.median(x["p50_s"] for x in runs) * 1e3,
                    "p99_ms": statistics.median(x["p99_s"] for x in runs) * 1e3,
                    "cores_busy": {k: round(v, 2) for k, v in cpu[name].items() if v >= 0.01},
                }
            base = row["1 node via proxy"]["per_s"]
            for name in targets:
                row[name]["ratio_vs_1_node_via_proxy"] = row[name]["per_s"] / base
            key = f"{tool}, {sessions} session{'s' if sessions > 1 else ''}"
            results[key] = row
            print(f"{key}:")
            for name in targets:
                x = row[name]
                print(
                    f"  {name:18} {x['per_s']:7.0f}/s  p50 {x['p50_ms']:6.2f} ms  p99 {x['p99_ms']:6.2f} ms  "
                    f"{x['ratio_vs_1_node_via_proxy']:.2f}x   cores busy: {x['cores_busy']}",
                    flush=True,
                )
    return results


# ---- 2. owner vs other node ---------------------------------------------------------------------------


def _percentiles(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "per_s": len(ordered) / wall,
        "p50_ms": ordered[len(ordered) // 2] * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
    }


async def _timed(session: Session, tool: str, calls: int) -> dict[str, float]:
    latencies = []
    t0 = time.perf_counter()
    for i in range(calls):
        s = time.perf_counter()
        await session.call_tool(tool, {"a": i, "b": 1} if tool == "add" else {})
        latencies.append(time.perf_counter() - s)
    return _percentiles(latencies, time.perf_counter() - t0)


async def owner_vs_other(owner: Node, other: Node, rounds: int, calls: int) -> dict[str, Any]:
    """One session opened on ``owner``; calls straight to it, and straight to ``other``, in turns."""
    at_owner = Session(owner.url)
    await at_owner.open()
    at_other = Session(other.url)
    at_other.session_id = at_owner.session_id
    at_other.next_id = 1_000_000
    results: dict[str, Any] = {}
    for tool in ("add", "counter"):
        for s in (at_owner, at_other):  # warm-up: the other node resumes (or forwards) here first
            await _timed(s, tool, max(10, calls // 10))
        per: dict[str, list[dict[str, float]]] = {"owner node": [], "other node": []}
        for r in range(rounds):
            for name, s in (("owner node", at_owner), ("other node", at_other)):
                per[name].append(await _timed(s, tool, calls))
            log(
                f"  {tool} round {r + 1}/{rounds}: owner {per['owner node'][-1]['p50_ms']:.2f} ms, "
                f"other {per['other node'][-1]['p50_ms']:.2f} ms (p50)"
            )
        row = {
            name: {k: statistics.median(x[k] for x in runs) for k in runs[0]} for name, runs in per.items()
        }
        row["other/owner p50"] = row["other node"]["p50_ms"] / row["owner node"]["p50_ms"]
        row["other/owner calls per s"] = row["other node"]["per_s"] / row["owner node"]["per_s"]
        results[tool] = row
        print(
            f"{tool}, one session, sequential: owner {row['owner node']['per_s']:.0f}/s "
            f"p50 {row['owner node']['p50_ms']:.2f} ms p99 {row['owner node']['p99_ms']:.2f} ms | other node "
            f"{row['other node']['per_s']:.0f}/s p50 {row['other node']['p50_ms']:.2f} ms "
            f"p99 {row['other node']['p99_ms']:.2f} ms | p50 {row['other/owner p50']:.2f}x",
            flush=True,
        )
    await at_owner.delete()
    await at_owner.conn.close()
    await at_other.conn.close()
    return results


def resumed_own_copy(node: Node) -> bool:
    """Whether ``node`` started its own actor for a session from the store (its log says "session ...
    resumed from the state store"): without session ownership it does; with forwarding to the owner it
    does not."""
    return "resumed from the state store" in node.log_tail(2_000_000)


# ---- 3. kill recovery ---------------------------------------------------------------------------------


async def one_kill(
    url: str, victim: Node, sessions: int, traffic_before: float, limit: float
) -> dict[str, Any]:
    """``sessions`` sessions call ``counter`` in a loop through ``url``; ``victim`` is SIGKILLed; per
    session, seconds from the kill to the first answer of a request sent after it."""
    clients = [Session(url) for _ in range(sessions)]
    await asyncio.gather(*(c.open() for c in clients))
    killed_at: list[float] = []
    back: dict[int, float] = {}
    failures = [0]
    stop = asyncio.Event()

    async def loop(i: int, client: Session) -> None:
        while not stop.is_set():
            sent = time.perf_counter()
            try:
                await asyncio.wait_for(client.call_tool("counter", {}), timeout=5.0)
            except Exception:  # a cut stream, a 502, a refused connection, a timeout: retry on a fresh one
                failures[0] += 1
                await client.conn.close()
                await asyncio.sleep(0.005)
                continue
            if killed_at and sent >= killed_at[0] and i not in back:
                back[i] = time.perf_counter() - killed_at[0]
                if len(back) == len(clients):
                    stop.set()

    async def killer() -> None:
        await asyncio.sleep(traffic_before)
        killed_at.append(time.perf_counter())
        victim.kill()
        try:
            await asyncio.wait_for(stop.wait(), timeout=limit)
        except TimeoutError:
            stop.set()

    await asyncio.gather(killer(), *(loop(i, c) for i, c in enumerate(clients)))
    for c in clients:
        await c.conn.close()
    return {"recovered": sorted(back.values()), "sessions": sessions, "failed_attempts": failures[0]}


def kill_recovery(
    workdir: Path, kills: int, sessions: int, redis_url: str, node_ttl: float
) -> dict[str, Any]:
    samples: list[float] = []
    unrecovered = 0
    failed_attempts = 0
    for k in range(kills):
        with start_cluster(
            workdir / f"kill{k}",
            nodes=2,
            target=APP,
            redis_url=redis_url,
            names=f"kill{k}-node",
            extra=["--node-ttl", str(node_ttl)],
        ) as cluster:
            proxy = start_proxy_process(cluster.addresses)
            try:
                out = asyncio.run(one_kill(proxy.url, cluster.nodes[1], sessions, 1.0, 30.0))
            finally:
                proxy.stop()
        samples += out["recovered"]
        unrecovered += sessions - len(out["recovered"])
        failed_attempts += out["failed_attempts"]
        log(
            f"  kill {k + 1}/{kills}: {len(out['recovered'])}/{sessions} sessions answering again, "
            f"max {max(out['recovered'], default=float('nan')):.3f} s, "
            f"{out['failed_attempts']} failed attempts"
        )
    ordered = sorted(samples)
    result = {
        "kills": kills,
        "sessions_per_kill": sessions,
        "median_s": statistics.median(ordered) if ordered else None,
        "p99_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None,
        "max_s": ordered[-1] if ordered else None,
        "unrecovered_sessions": unrecovered,
        "failed_attempts": failed_attempts,
    }
    print(
        f"kill -> every session answering again: median {result['median_s']:.3f} s, "
        f"p99 {result['p99_s']:.3f} s, "
        f"max {result['max_s']:.3f} s over {len(ordered)} sessions ({kills} kills); "
        f"{unrecovered} never answered within 30 s; {failed_attempts} failed attempts retried",
        flush=True,
    )
    return result


def _timed_section(name: str, fn: Callable[[], Any]) -> Any:
    log(f"== {name}")
    t0 = time.perf_counter()
    out = fn()
    log(f"   ({time.perf_counter() - t0:.0f} s)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run; writes nothing")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--node-ttl",
        type=float,
        default=3.0,
        help="the nodes' --node-ttl: how long until a killed node's sessions are taken over (default 3)",
    )
    args = parser.parse_args()
    rounds, calls, kills = (1, 200, 1) if args.quick else (3, 1000, 3)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "python": sys.version.split()[0],
        "node_ttl": args.node_ttl,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_cluster(
            Path(tmp) / "c", nodes=2, target=APP, extra=["--node-ttl", str(args.node_ttl)]
        ) as cluster,
    ):
        proxies = {
            "1": start_proxy_process(cluster.addresses[:1]),
            "2": start_proxy_process(cluster.addresses),
        }
        try:
            results["throughput"] = _timed_section(
                "throughput: 1 node direct, 1 node via proxy (baseline), 2 nodes via proxy",
                lambda: throughput(cluster, proxies, rounds, calls),
            )
        finally:
            for proxy in proxies.values():
                proxy.stop()
        results["owner_vs_other"] = _timed_section(
            "owner node vs other node",
            lambda: asyncio.run(owner_vs_other(cluster.nodes[0], cluster.nodes[1], rounds, calls // 2)),
        )
        own_copy = resumed_own_copy(cluster.nodes[1])
        results["owner_vs_other"]["other_node_resumed_its_own_copy"] = own_copy
        print(
            "the other node "
            + (
                "served its own copy of the session, resumed from the store (no forwarding in this build)"
                if own_copy
                else "did not resume the session itself: its answers came through the owner (forwarded)"
            )
        )
        results["kill_recovery"] = _timed_section(
            "kill recovery: 2 nodes behind the proxy, node 2 SIGKILLed under 20 sessions",
            lambda: kill_recovery(Path(tmp) / "k", kills, 20, cluster.redis_url, args.node_ttl),
        )
    results["machine"]["load_average_at_end"] = os.getloadavg()
    if not args.quick and not args.no_write:
        out = ROOT / "benchmarks" / "results" / "cluster.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {out}")


if __name__ == "__main__":
    main()
