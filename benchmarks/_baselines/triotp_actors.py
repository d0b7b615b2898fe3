"""The triotp side of benchmarks/actors.py: run with the triotp venv's Python, prints one JSON object.

triotp 0.3.1 needs Python >= 3.13, so benchmarks/actors.py runs this file in its own venv
(benchmarks/.venv-triotp) as a subprocess. Each figure mirrors one measured on our actors:

- call: ``gen_server.call(name, msg, timeout=5.0)`` round trips/s against one gen_server;
- cast: ``gen_server.cast`` messages/s, flushed by one call;
- spawn_exit: ``dynamic_supervisor.start_child`` of a TEMPORARY gen_server, wait for its ``init``, cast it
  a stop, wait for its ``terminate``;
- restart: a PERMANENT gen_server under ``supervisor.start`` crashes; time until its new ``init`` ran;
- ``--rss N``: RSS growth for N idle gen_servers under one dynamic supervisor.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import statistics
import sys
import time
from typing import Any

import trio
from triotp import dynamic_supervisor, gen_server, mailbox, supervisor

_module = sys.modules[__name__]


class Boom(Exception):
    pass


class Hooks:
    """Per-server state: events the benchmark waits on."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.terminated = trio.Event()
        self.started_at = 0.0


# ---- gen_server callbacks (triotp takes a module) --------------------------------------------------


async def init(hooks: Hooks) -> Hooks:
    hooks.started_at = time.perf_counter()
    hooks.started.set()
    return hooks


async def terminate(reason: BaseException | None, hooks: Hooks) -> None:
    hooks.terminated.set()


async def handle_call(msg: Any, caller: Any, hooks: Hooks) -> Any:
    return (gen_server.Reply(payload=msg), hooks)


async def handle_cast(msg: Any, hooks: Hooks) -> Any:
    if msg == "stop":
        return (gen_server.Stop(), hooks)
    if msg == "crash":
        return (gen_server.Stop(Boom("crash")), hooks)
    return (gen_server.NoReply(), hooks)


# ---- measurements --------------------------------------------------------------------------------


async def bench_call_and_cast(n_calls: int, n_casts: int) -> dict[str, float]:
    hooks = Hooks()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gen_server.start, _module, hooks, "echo")
        await hooks.started.wait()
        for i in range(200):
            await gen_server.call("echo", i, timeout=5.0)
        t0 = time.perf_counter()
        for i in range(n_calls):
            await gen_server.call("echo", i, timeout=5.0)
        call_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n_casts):
            await gen_server.cast("echo", i)
        await gen_server.call("echo", "flush", timeout=5.0)
        cast_s = time.perf_counter() - t0
        await gen_server.cast("echo", "stop")
    return {"call_per_s": n_calls / call_s, "cast_per_s": n_casts / cast_s}


async def bench_spawn_exit(n: int) -> float:
    async with trio.open_nursery() as nursery:
        sup = await nursery.start(dynamic_supervisor.start, supervisor.options(), None)
        t0 = time.perf_counter()
        for i in range(n):
            hooks = Hooks()
            name = f"w{i}"
            spec = supervisor.child_spec(
                id=name,
                task=gen_server.start,
                args=[_module, hooks, name],
                restart=supervisor.restart_strategy.TEMPORARY,
            )
            await dynamic_supervisor.start_child(sup, spec)
            await hooks.started.wait()
            await gen_server.cast(name, "stop")
            await hooks.terminated.wait()
        elapsed = time.perf_counter() - t0
        nursery.cancel_scope.cancel()
    return n / elapsed


async def bench_restart(n: int) -> dict[str, float]:
    hooks = Hooks()
    latencies: list[float] = []
    spec = supervisor.child_spec(
        id="crasher",
        task=gen_server.start,
        args=[_module, hooks, "crasher"],
        restart=supervisor.restart_strategy.PERMANENT,
    )
    opts = supervisor.options(max_restarts=10 * n + 10, max_seconds=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.start, [spec], opts)
        await hooks.started.wait()
        for _ in range(n):
            hooks.started = trio.Event()
            t0 = time.perf_counter()
            await gen_server.cast("crasher", "crash")
            await hooks.started.wait()
            latencies.append(hooks.started_at - t0)
        nursery.cancel_scope.cancel()
    return _latency_summary(latencies)


def _latency_summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "restart_median_s": statistics.median(ordered),
        "restart_p99_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


async def bench_rss(n: int) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        sup = await nursery.start(dynamic_supervisor.start, supervisor.options(), None)
        warm = Hooks()
        await dynamic_supervisor.start_child(
            sup, supervisor.child_spec(id="warm", task=gen_server.start, args=[_module, warm, "warm"])
        )
        await warm.started.wait()
        gc.collect()
        before = _rss()
        last = warm
        for i in range(n):
            last = Hooks()
            spec = supervisor.child_spec(id=f"a{i}", task=gen_server.start, args=[_module, last, f"a{i}"])
            await dynamic_supervisor.start_child(sup, spec)
        await last.started.wait()
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = _rss()
        nursery.cancel_scope.cancel()
    return {"actors": n, "rss_before": before, "rss_after": after, "bytes_per_actor": (after - before) / n}


async def main(args: argparse.Namespace) -> None:
    mailbox._init()  # what triotp.node.run does before starting applications
    if args.rss:
        result: dict[str, Any] = await bench_rss(args.rss)
    else:
        result = await bench_call_and_cast(args.calls, args.casts)
        result["spawn_exit_per_s"] = await bench_spawn_exit(args.spawns)
        result.update(await bench_restart(args.restarts))
    result["python"] = sys.version.split()[0]
    result["triotp_version"] = importlib.metadata.version("triotp")
    result["trio"] = trio.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    import trio.testing

    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--casts", type=int, default=50000)
    parser.add_argument("--spawns", type=int, default=2000)
    parser.add_argument("--restarts", type=int, default=300)
    parser.add_argument("--rss", type=int, default=0)
    trio.run(main, parser.parse_args())
