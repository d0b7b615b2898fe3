"""The official SDK's side of benchmarks/server.py: the benchmark's server written with ``mcp``'s own
high-level ``MCPServer`` (``from mcp.server.mcpserver import MCPServer``, mcp 2.3), what a user of the
``mcp`` package picks first.

Runs with the peers' venv Python (``benchmarks/.venv-fastmcp``: fastmcp 4.2.3, which brings mcp 2.3.0).
The same two tools as ours and FastMCP's:

- ``add(a, b)``: a trivial sync tool (MCPServer calls sync tools on the event loop);
- ``counter()``: per-session state, read and written once per call. MCPServer has no session-state API,
  so the state lives in a dict keyed by the client's connection (weakly, so it goes with it). In mcp 2.3
  ``ctx.session`` is a fresh ``ServerSession`` per request; the connection it wraps (``_connection``) is
  what lives as long as the MCP session.

As a script it serves Streamable HTTP on 127.0.0.1 with uvicorn (as ``MCPServer.run`` does, with the
access log off as for FastMCP), until terminated; ``--json-response`` answers POSTs with JSON.
"""

from __future__ import annotations

import argparse
import logging
import weakref
from typing import Any

from mcp.server.mcpserver import Context, MCPServer


def build_server() -> MCPServer:
    mcp = MCPServer("bench")
    state: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    async def counter(ctx: Context) -> int:
        """Increment this session's counter and return it."""
        key = getattr(ctx.session, "_connection", ctx.session)
        n = state.get(key, 0) + 1
        state[key] = n
        return n

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--json-response", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import uvicorn

    app = build_server().streamable_http_app(json_response=args.json_response, host=args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
