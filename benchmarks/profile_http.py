"""cProfile of our HTTP server (in this process) under the load generator of ``server.py`` (another process).

    .venv/bin/python benchmarks/profile_http.py [--mode calls|sessions] [--tool add|counter]
        [--sessions 1] [--calls 2000] [--json-response] [--http-parser h11] [--top 25]

Why: on a shared, noisy machine times move by tens of percent between runs, while the number of Python
calls per request does not; this prints both, per request (or per session open+initialize+close), and
the share of the server's CPU spent in the HTTP parser's modules (h11, httptools), so a change to the
HTTP exchange can be judged by counts first and times second. Threads (the worker thread of the sync
``add``) are not profiled: cProfile only sees the thread it was enabled in.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import server as bench  # noqa: E402

LOAD = HERE / "_baselines" / "http_load.py"


GROUPS = {"h11": "/h11/", "httptools": "httptools", "our http transport": "transports/http/"}


def by_group(stats: pstats.Stats) -> tuple[dict[str, float], dict[str, int], float]:
    """Own time (tottime) by module group as a share of all own time, Python calls by group, and the
    total own time."""
    total = 0.0
    share = dict.fromkeys(GROUPS, 0.0)
    calls = dict.fromkeys(GROUPS, 0)
    for (filename, _, _), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        for name, needle in GROUPS.items():
            if needle in filename:
                share[name] += tottime
                calls[name] += ncalls
    return {name: value / total for name, value in share.items()}, calls, total


async def serve_and_load(args: argparse.Namespace, profile: cProfile.Profile) -> dict[str, Any]:
    from mcpvisor.runtime.transports.http import serve_http

    async with bench.running_port() as port, trio.open_nursery() as nursery:
        extra = {"http_parser": args.http_parser} if args.http_parser else {}
        bound = await nursery.start(
            lambda task_status: serve_http(
                port,
                host="127.0.0.1",
                port=0,
                json_response=args.json_response,
                task_status=task_status,
                **extra,
            )
        )
        url = f"http://127.0.0.1:{bound}/mcp"
        cmd = [sys.executable, str(LOAD), args.mode, "--url", url, "--rounds", "1"]
        if args.mode == "calls":
            cmd += ["--tool", args.tool, "--sessions", str(args.sessions), "--calls", str(args.calls)]
            cmd += ["--warmup", "200"]
        else:
            cmd += ["--count", str(args.calls), "--warmup", "20"]
        await trio.run_process(cmd, capture_stdout=True, check=True)  # warm-up, not profiled
        profile.enable()
        done = await trio.run_process(cmd, capture_stdout=True, check=True)
        profile.disable()
        nursery.cancel_scope.cancel()
        return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--mode", choices=["calls", "sessions"], default="calls")
    parser.add_argument("--tool", choices=["add", "counter"], default="counter")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--http-parser", default=None, help="httptools or h11 (default: the default)")
    parser.add_argument("--top", type=int, default=0, help="print the top N functions by own time")
    parser.add_argument("--dump", type=Path, help="write the raw profile here")
    args = parser.parse_args()
    profile = cProfile.Profile()
    trio.run(serve_and_load, args, profile)
    stats = pstats.Stats(profile)
    if args.dump:
        stats.dump_stats(str(args.dump))
    # the load's own warm-up runs inside the profiled window too: count it
    units = args.calls + (200 if args.mode == "calls" else 20)
    calls = stats.total_calls  # type: ignore[attr-defined]
    shares, group_calls, total = by_group(stats)
    out = {
        "mode": args.mode,
        "tool": args.tool if args.mode == "calls" else None,
        "sessions": args.sessions if args.mode == "calls" else None,
        "json_response": args.json_response,
        "http_parser": args.http_parser or "default",
        "units": units,
        "python_calls_per_unit": calls / units,
        "profiled_cpu_us_per_unit": total / units * 1e6,
        "share": {k: round(v, 4) for k, v in shares.items()},
        "python_calls_per_unit_in": {k: round(v / units, 1) for k, v in group_calls.items()},
    }
    print(json.dumps(out))
    if args.top:
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
        print(text.getvalue(), file=sys.stderr)


if __name__ == "__main__":
    main()
