"""CPU and wall time per SDK in-memory session open+initialize+close, for before/after comparisons.

Runs in the checkout named by its first argument (its ``benchmarks/server.py``), so two checkouts can
be run in turn, round by round (interleaved), each with its own venv::

    <checkout>/.venv/bin/python benchmarks/sdk_session_cpu.py <checkout> [sessions]

Prints one JSON line: process CPU per session (µs), the p50 of one open+close (µs), sessions/s.
"""

from __future__ import annotations

import json
import sys
import time

import trio


async def main(checkout: str, n: int) -> None:
    sys.path.insert(0, checkout + "/benchmarks")
    from server import running_port, sdk_client  # that checkout's benchmarks/server.py

    async with running_port() as port:
        for _ in range(200):
            async with sdk_client(port):
                pass
        cpu0, t0 = time.process_time(), time.perf_counter()
        lat: list[float] = []
        for _ in range(n):
            t1 = time.perf_counter()
            async with sdk_client(port):
                pass
            lat.append(time.perf_counter() - t1)
        cpu = (time.process_time() - cpu0) / n
    lat.sort()
    print(
        json.dumps(
            {"cpu_us": cpu * 1e6, "p50_us": lat[n // 2] * 1e6, "per_s": n / (time.perf_counter() - t0)}
        )
    )


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
