"""Actor benchmark (issue 2, section 5): ours vs a raw trio floor vs triotp, in one run.

    .venv/bin/python benchmarks/actors.py            # full run (well under 2 minutes)
    .venv/bin/python benchmarks/actors.py --quick    # smoke run, a few seconds

Figures, each measured in this run (the machine is shared and noisy, so only same-run ratios mean much):

- call round trips/s: ``await ref.call(msg)`` (default 5 s timeout) against an echo actor; the floor is a
  raw trio ping-pong over two unbuffered memory channels; ratio ours/floor (target: >= 0.5);
- cast throughput: ``await ref.cast(msg)`` messages/s, flushed by one call at the end;
- spawn+exit/s: ``start_child`` of a TEMPORARY actor under one DynamicSupervisor, then ``stop()`` it;
- crash->restarted latency (median, p99): a PERMANENT actor under a Supervisor crashes; time until the
  fresh incarnation's ``init`` has run;
- RSS per live actor: 10,000 idle actors under one DynamicSupervisor, measured in a fresh subprocess before
  and after (target: within 50 MB);
- the same figures for triotp 0.3.1 (Python >= 3.13), in its own venv ``benchmarks/.venv-triotp``, created
  here when missing, run as a subprocess that prints JSON.

Results go to benchmarks/results/actors.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio
import trio.testing
from mcpvisor.runtime.actors import (
    ActorRef,
    Caller,
    Registry,
    StopActor,
    actor_child_spec,
    current_actor,
    spawn,
)
from mcpvisor.supervisors import Restart, open_dynamic_supervisor, open_supervisor

HERE = Path(__file__).resolve().parent
TRIOTP_VENV = HERE / ".venv-triotp"
TRIOTP_PYTHON_BUILD = Path("/root/.pyenv/versions/3.13.0/bin/python3.13")
TRIOTP_SCRIPT = HERE / "_baselines" / "triotp_actors.py"
RESULTS = HERE / "results" / "actors.json"


def progress(msg: str) -> None:
    print(f"[actors] {msg}", flush=True)


class Boom(Exception):
    pass


class Echo:
    async def handle_call(self, msg: Any, caller: Caller) -> Any:
        return msg

    async def handle_cast(self, msg: Any) -> None:
        pass


class Tracked(Echo):
    """An echo actor that hands its own ref to the benchmark from ``init``."""

    def __init__(self, refs: list[ActorRef]) -> None:
        self.refs = refs

    async def init(self) -> None:
        self.refs.append(current_actor())


class Crasher:
    """Records when its init ran, so the benchmark can time a restart."""

    def __init__(self, started: list[float], event_box: list[trio.Event]) -> None:
        self.started = started
        self.event_box = event_box

    async def init(self) -> None:
        self.started.append(time.perf_counter())
        self.event_box[0].set()

    async def handle_cast(self, msg: Any) -> None:
        if msg == "crash":
            raise Boom("crash")
        if msg == "stop":
            raise StopActor()


# ---- the floor and our actors ----------------------------------------------------------------------


async def bench_floor(n: int) -> float:
    send_req, recv_req = trio.open_memory_channel[Any](0)
    send_rep, recv_rep = trio.open_memory_channel[Any](0)

    async def echo() -> None:
        async for msg in recv_req:
            await send_rep.send(msg)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        for i in range(200):
            await send_req.send(i)
            await recv_rep.receive()
        t0 = time.perf_counter()
        for i in range(n):
            await send_req.send(i)
            await recv_rep.receive()
        elapsed = time.perf_counter() - t0
        await send_req.aclose()
    return n / elapsed


async def bench_calls_and_casts(n_calls: int, n_casts: int) -> dict[str, float]:
    async with trio.open_nursery() as nursery:
        ref = await spawn(nursery, Echo())
        for i in range(200):
            await ref.call(i)
        t0 = time.perf_counter()
        for i in range(n_calls):
            await ref.call(i)
        call_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n_calls):
            await ref.call(i, timeout=None)
        call_no_timeout_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(n_casts):
            await ref.cast(i)
        await ref.call("flush")
        cast_s = time.perf_counter() - t0
        await ref.stop()
    return {
        "call_per_s": n_calls / call_s,
        "call_no_timeout_per_s": n_calls / call_no_timeout_s,
        "cast_per_s": n_casts / cast_s,
    }


async def bench_spawn_exit(n: int) -> float:
    refs: list[ActorRef] = []
    spec = actor_child_spec("worker", lambda: Tracked(refs), restart=Restart.TEMPORARY)
    async with open_dynamic_supervisor(max_children=n + 10) as sup:
        t0 = time.perf_counter()
        for _ in range(n):
            await sup.start_child(spec)
            await refs.pop().stop()
        elapsed = time.perf_counter() - t0
    return n / elapsed


async def bench_restart(n: int) -> dict[str, float]:
    started: list[float] = []
    event_box = [trio.Event()]
    registry = Registry()
    spec = actor_child_spec("crasher", lambda: Crasher(started, event_box), name="crasher", registry=registry)
    latencies: list[float] = []
    async with open_supervisor([spec], intensity=10 * n + 10, period=1.0):
        await event_box[0].wait()
        for _ in range(n):
            ref = registry.whereis("crasher")
            assert ref is not None
            event_box[0] = trio.Event()
            t0 = time.perf_counter()
            await ref.cast("crash")
            await event_box[0].wait()
            latencies.append(started[-1] - t0)
    return latency_summary(latencies)


def latency_summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "restart_median_s": statistics.median(ordered),
        "restart_p99_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def bench_rss(n: int) -> dict[str, Any]:
    """Runs in a fresh subprocess: RSS growth for ``n`` idle actors under ONE DynamicSupervisor, all
    started from one shared child spec (OTP's simple_one_for_one)."""
    refs: list[ActorRef] = []
    spec = actor_child_spec("idle", lambda: Tracked(refs))
    under = "DynamicSupervisor"
    async with open_dynamic_supervisor(max_children=n + 10) as sup:
        await sup.start_child(spec)
        await refs[0].call("warm")
        gc.collect()
        before = rss_bytes()
        for _ in range(n):
            await sup.start_child(spec)
        assert len(refs) == n + 1
        assert sup.count_children().active == n + 1
        assert await refs[-1].call("alive?") == "alive?"
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        after = rss_bytes()
        for ref in refs:
            ref.request_stop()
        del refs[:]
    return {
        "actors": n,
        "under": under,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_actor": (after - before) / n,
    }


# ---- triotp ------------------------------------------------------------------------------------------


def ensure_triotp_venv() -> Path | None:
    python = TRIOTP_VENV / "bin" / "python"
    if python.exists():
        return python
    build = TRIOTP_PYTHON_BUILD if TRIOTP_PYTHON_BUILD.exists() else shutil.which("python3.13")
    if build is None:
        progress(f"no Python 3.13 (neither {TRIOTP_PYTHON_BUILD} nor python3.13 on PATH): triotp skipped")
        return None
    progress(f"creating {TRIOTP_VENV} ({build}) with triotp==0.3.1")
    subprocess.run([str(build), "-m", "venv", str(TRIOTP_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "triotp==0.3.1"], check=True)
    return python


def run_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---- main --------------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


async def measure_ours(sizes: dict[str, int]) -> dict[str, Any]:
    ours: dict[str, Any] = {}
    progress(f"floor: raw trio ping-pong over two memory channels, {sizes['calls']} round trips")
    ours["floor_call_per_s"] = await bench_floor(sizes["calls"])
    progress(f"ours: {sizes['calls']} calls, {sizes['casts']} casts")
    ours.update(await bench_calls_and_casts(sizes["calls"], sizes["casts"]))
    progress(f"ours: {sizes['spawns']} spawn+exit under a DynamicSupervisor")
    ours["spawn_exit_per_s"] = await bench_spawn_exit(sizes["spawns"])
    progress(f"ours: {sizes['restarts']} crash->restart cycles under a Supervisor")
    ours.update(await bench_restart(sizes["restarts"]))
    return ours


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/actors.json")
    args = parser.parse_args()
    # Supervisors log every crash and restart; thousands of restart log lines would measure the terminal.
    logging.disable(logging.CRITICAL)

    if args.rss_child:
        print(json.dumps(trio.run(bench_rss, args.rss_child)))
        return

    if args.quick:
        sizes = {"calls": 5000, "casts": 10000, "spawns": 300, "restarts": 50, "rss": 2000}
    else:
        sizes = {"calls": 50000, "casts": 100000, "spawns": 3000, "restarts": 500, "rss": 10000}
    started = time.perf_counter()
    ours = trio.run(measure_ours, sizes)
    progress(f"ours: RSS of {sizes['rss']} idle actors (fresh subprocess)")
    ours_rss = run_json([sys.executable, __file__, "--rss-child", str(sizes["rss"])], timeout=120)
    ours.update(
        {
            "rss_actors": ours_rss["actors"],
            "rss_under": ours_rss["under"],
            "rss_bytes_per_actor": ours_rss["bytes_per_actor"],
        }
    )
    ours["rss_total_mb"] = ours_rss["bytes_per_actor"] * ours_rss["actors"] / 1e6

    triotp: dict[str, Any] = {}
    python = ensure_triotp_venv()
    if python is not None:
        progress("triotp: calls, casts, spawn+exit, restarts (subprocess, its own venv)")
        triotp = run_json(
            [
                str(python),
                str(TRIOTP_SCRIPT),
                "--calls",
                str(sizes["calls"]),
                "--casts",
                str(sizes["casts"]),
                "--spawns",
                str(sizes["spawns"]),
                "--restarts",
                str(sizes["restarts"]),
            ],
            timeout=120,
        )
        # triotp starts children through its supervisor's mailbox, slowly (10,000 take ~15 s), but the
        # comparison is only fair at the same count: per-actor overheads amortise differently.
        n_rss = sizes["rss"]
        progress(f"triotp: RSS of {n_rss} idle gen_servers under one dynamic supervisor (subprocess)")
        t_rss = run_json([str(python), str(TRIOTP_SCRIPT), "--rss", str(n_rss)], timeout=120)
        triotp.update({"rss_actors": t_rss["actors"], "rss_bytes_per_actor": t_rss["bytes_per_actor"]})

    ratios = {
        "call_ours_over_floor": ratio(ours["call_per_s"], ours["floor_call_per_s"]),
        "call_ours_over_triotp": ratio(ours["call_per_s"], triotp.get("call_per_s")),
        "cast_ours_over_triotp": ratio(ours["cast_per_s"], triotp.get("cast_per_s")),
        "spawn_exit_ours_over_triotp": ratio(ours["spawn_exit_per_s"], triotp.get("spawn_exit_per_s")),
        "restart_median_triotp_over_ours": ratio(triotp.get("restart_median_s"), ours["restart_median_s"]),
        "rss_per_actor_triotp_over_ours": ratio(
            triotp.get("rss_bytes_per_actor"), ours["rss_bytes_per_actor"]
        ),
    }
    targets = {
        "call_within_2x_of_floor": (ratios["call_ours_over_floor"] or 0) >= 0.5,
        "call_faster_than_triotp": (ratios["call_ours_over_triotp"] or 0) > 1.0,
        "10k_actors_within_50MB": ours["rss_bytes_per_actor"] * 10000 <= 50e6,
    }
    report(ours, triotp, ratios, targets)
    result = {
        "quick": args.quick,
        "sizes": sizes,
        "seconds": time.perf_counter() - started,
        "machine": {"python": platform.python_version(), "trio": trio.__version__, "cpus": os.cpu_count()},
        "ours": ours,
        "triotp": triotp,
        "ratios": ratios,
        "targets_met": targets,
    }
    if not args.no_write:
        RESULTS.parent.mkdir(exist_ok=True)
        name = RESULTS if not args.quick else RESULTS.with_name("actors-quick.json")
        name.write_text(json.dumps(result, indent=2) + "\n")
        progress(f"wrote {name.relative_to(HERE.parent)}")


def report(
    ours: dict[str, Any], triotp: dict[str, Any], ratios: dict[str, Any], targets: dict[str, bool]
) -> None:
    def fmt(v: Any, unit: str = "") -> str:
        if v is None:
            return "-"
        if unit == "us":
            return f"{v * 1e6:,.0f} us"
        return f"{v:,.0f}{unit}"

    rows = [
        ("call round trips/s", ours["call_per_s"], triotp.get("call_per_s"), ""),
        ("  (ours, timeout=None)", ours["call_no_timeout_per_s"], None, ""),
        ("  floor: channel ping-pong/s", ours["floor_call_per_s"], None, ""),
        ("cast messages/s", ours["cast_per_s"], triotp.get("cast_per_s"), ""),
        ("spawn+exit/s (dynamic sup)", ours["spawn_exit_per_s"], triotp.get("spawn_exit_per_s"), ""),
        ("crash->restart median", ours["restart_median_s"], triotp.get("restart_median_s"), "us"),
        ("crash->restart p99", ours["restart_p99_s"], triotp.get("restart_p99_s"), "us"),
        ("RSS bytes per idle actor", ours["rss_bytes_per_actor"], triotp.get("rss_bytes_per_actor"), ""),
    ]
    baseline = "triotp " + str(triotp.get("triotp_version", "")) if triotp else "triotp"
    print()
    print(f"{'':32} {'mcpvisor':>14} {baseline:>14}")
    for label, a, b, unit in rows:
        print(f"{label:32} {fmt(a, unit):>14} {fmt(b, unit):>14}")
    print()
    for key, value in ratios.items():
        print(f"{key:40} {'-' if value is None else f'{value:.2f}x'}")
    print(
        f"{'10,000 actors total RSS':40} {ours['rss_bytes_per_actor'] * 10000 / 1e6:.1f} MB"
        f" (ours measured under: {ours['rss_under']})"
    )
    for key, ok in targets.items():
        print(f"target {key:33} {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
