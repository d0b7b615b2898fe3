"""The FastMCP side of benchmarks/server.py: the benchmark's MCP server written with FastMCP.

Runs with the FastMCP venv's Python (benchmarks/.venv-fastmcp, fastmcp 4.1.6). The same two tools as our
server in benchmarks/server.py:

- ``add(a, b)``: a trivial tool, returns ``a + b``;
- ``counter()``: a session-state read+write, ``n = get_state("n") or 0; set_state("n", n + 1)``, returns
  ``n + 1`` (FastMCP's ``Context.get_state``/``set_state``, keyed by the session id).

As a script it serves Streamable HTTP on 127.0.0.1 (uvicorn, FastMCP's own ``run``), quietly, until it is
terminated; ``--json-response`` answers POSTs with ``application/json`` instead of an SSE stream.
"""

from __future__ import annotations

import argparse
import logging

from fastmcp import Context, FastMCP


def build_server() -> FastMCP:
    mcp = FastMCP("bench")

    @mcp.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool
    async def counter(ctx: Context) -> int:
        """Increment this session's counter and return it."""
        n = (await ctx.get_state("n")) or 0
        n += 1
        await ctx.set_state("n", n)
        return int(n)

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--json-response", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    build_server().run(
        transport="http",
        host=args.host,
        port=args.port,
        show_banner=False,
        log_level="warning",
        json_response=args.json_response,
        uvicorn_config={"access_log": False},
    )


if __name__ == "__main__":
    main()
