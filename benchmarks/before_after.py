"""Our server before and after a change, next to both peers, in one run with the sides interleaved.

    git archive <commit> | tar -x -C /tmp/before && (cd /tmp/before && python3 -m venv .venv &&
        .venv/bin/pip install -q -e '.[dev]')
    .venv/bin/python benchmarks/before_after.py --before /tmp/before [--rounds 5] [--json-response]

``server.py`` compares this checkout with the peers; a change's own effect on a shared, noisy machine
needs the older code measured in the same minutes. This runs the rows a server-side change moves: in
memory under the official SDK's ``ClientSession`` (``add`` and ``counter``, 1 and 20 sessions, and
session open+initialize+close) and over HTTP (the same calls and session opens, with each server
process's CPU time per call), each side in its own process, before / after / MCPServer / FastMCP in
turn, round by round, and prints the medians. Each checkout runs its own ``benchmarks/server.py``
(``--child``, ``--serve-http``), so the measuring code is the one each commit shipped. Results (every
round) go to ``benchmarks/results/before-after[-json].json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import server as bench  # noqa: E402  (this directory's server.py: its process and load helpers)

SIDES = ("before", "after", "mcpserver", "fastmcp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--before", required=True, type=Path, help="a checkout of the older commit with .venv"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--sessions-count", type=int, default=200)
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--no-inmemory", action="store_true")
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    peers = bench.ensure_fastmcp_venv()
    if peers is None:
        sys.exit("the peers' venv (benchmarks/.venv-fastmcp) is missing and could not be created")
    before_py = str(args.before / ".venv" / "bin" / "python")
    scripts = {
        "before": [before_py, str(args.before / "benchmarks" / "server.py")],
        "after": [sys.executable, str(HERE / "server.py")],
    }
    inmem = str(HERE / "_baselines" / "fastmcp_inmemory.py")
    tools = ["--tools", "add,counter", "--sessions", "1,20"]
    one = ["--calls", str(args.calls), "--warmup", "200", "--rounds", "1"]
    count = ["--count", str(args.sessions_count)]
    inmem_cmds = {
        "before": [*scripts["before"], "--client", "sdk", "--child", "calls"],
        "after": [*scripts["after"], "--client", "sdk", "--child", "calls"],
        "mcpserver": [str(peers), inmem, "--server", "mcpserver", "--client", "sdk", "calls"],
        "fastmcp": [str(peers), inmem, "--server", "fastmcp", "--client", "sdk", "calls"],
    }
    rounds: list[dict[str, Any]] = []
    json_flag = ["--json-response"] if args.json_response else []
    servers: dict[str, bench.ServerProcess] = {}
    try:
        if not args.no_http:
            servers["before"] = bench.ServerProcess(
                "before", lambda p: [*scripts["before"], "--serve-http", str(p), *json_flag]
            )
            servers["after"] = bench.ServerProcess(
                "after", lambda p: [*scripts["after"], "--serve-http", str(p), *json_flag]
            )
            base = HERE / "_baselines"
            servers["mcpserver"] = bench.ServerProcess(
                "mcpserver", lambda p: [str(peers), str(base / "sdk_server.py"), "--port", str(p), *json_flag]
            )
            servers["fastmcp"] = bench.ServerProcess(
                "fastmcp",
                lambda p: [str(peers), str(base / "fastmcp_server.py"), "--port", str(p), *json_flag],
            )
            for s in servers.values():
                s.wait_ready()
        load = [str(peers), str(HERE / "_baselines" / "http_load.py")]
        for r in range(args.rounds):
            row: dict[str, Any] = {side: {} for side in SIDES}
            for side in SIDES if not args.no_inmemory else ():
                bench.progress(f"round {r + 1}/{args.rounds}: in memory, SDK client, {side}")
                for key, out in bench.run_json([*inmem_cmds[side], *tools, *one, *count], 300).items():
                    row[side][f"inmemory/sdk/{key}"] = out
            for tool in ("add", "counter") if servers else ():
                for k in (1, 20):
                    for side in SIDES:
                        server = servers[side]
                        calls = ["calls", "--url", server.url, "--tool", tool, "--sessions", str(k)]
                        row[side][f"http/{tool}/{k}"] = server.run_load([*load, *calls, *one], 300)
            for side in SIDES if servers else ():
                bench.progress(f"round {r + 1}/{args.rounds}: HTTP session opens, {side}")
                server = servers[side]
                cpu0 = server.cpu()
                sessions = ["sessions", "--url", server.url, "--count", str(args.sessions_count)]
                out = bench.run_json([*load, *sessions, "--rounds", "1"], 300)
                out["cpu_per_session_s"] = (server.cpu() - cpu0) / args.sessions_count
                row[side]["http/sessions"] = out
            rounds.append(row)
    finally:
        for s in servers.values():
            s.stop()
    report(rounds, args)


def _median(rounds: list[dict[str, Any]], side: str, key: str, field: str) -> float | None:
    values = [r[side][key][field] for r in rounds if key in r[side] and field in r[side][key]]
    return statistics.median(values) if values else None


def report(rounds: list[dict[str, Any]], args: argparse.Namespace) -> None:
    keys = sorted({k for r in rounds for side in SIDES for k in r[side]})
    fields = [("per_s", "calls/s", 1.0), ("p50_s", "p50 us", 1e6), ("p99_s", "p99 us", 1e6)]
    fields += [
        ("cpu_per_call_s", "server CPU/call us", 1e6),
        ("cpu_per_session_s", "server CPU/session us", 1e6),
    ]
    medians: dict[str, Any] = {}
    print("| row | before | after | MCPServer | FastMCP | after/before | x MCPServer | x FastMCP |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in keys:
        for field, label, scale in fields:
            v = {side: _median(rounds, side, key, field) for side in SIDES}
            if v["after"] is None:
                continue
            medians[f"{key} {field}"] = v
            better = (lambda a, b: a / b) if field == "per_s" else (lambda a, b: b / a)

            def ratio(peer: float | None, v: dict[str, float | None] = v, better: Any = better) -> str:
                after = v["after"]
                return "-" if peer is None or after is None else f"{better(after, peer):.2f}x"

            cells = " | ".join("-" if v[s] is None else f"{v[s] * scale:,.0f}" for s in SIDES)
            ratios = " | ".join(ratio(v[s]) for s in ("before", "mcpserver", "fastmcp"))
            print(f"| {key} {label} | {cells} | {ratios} |")
    suffix = "-json" if args.json_response else ""
    out = HERE / "results" / f"before-after{suffix}.json"
    out.write_text(
        json.dumps({"source": bench.source_state(), "medians": medians, "rounds": rounds}, indent=1)
    )
    print(f"(written to {out})", file=sys.stderr)


if __name__ == "__main__":
    main()
