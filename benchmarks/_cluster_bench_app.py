"""The server of benchmarks/cluster.py: the two tools `_baselines/http_load.py` drives.

``add`` touches no state (what a request costs on a shared store: the per-request check of the stored
session); ``counter`` updates one value in the session's state (one atomic update in Redis). Both answer
plain values, as the load generator checks them (``add(0, 1)`` is ``1``; ``counter`` counts exactly).
"""

from __future__ import annotations

from mcpvisor.runtime.server import Context, Server

server = Server("cluster-bench")


@server.tool()
def add(a: int, b: int) -> int:
    return a + b


@server.tool()
async def counter(ctx: Context) -> int:
    count: int = await ctx.update_state("count", lambda n: n + 1, default=0)
    return count
