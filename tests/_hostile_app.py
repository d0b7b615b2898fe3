"""A server whose tools produce what JSON cannot carry, for the hostile-input and fuzz tests.

Loadable by the CLI too: ``mcpvisor run tests/_hostile_app.py:app --transport stdio``.
"""

from __future__ import annotations

import math
from typing import Any

from mcpvisor.runtime.server import Context, Server

app = Server("hostile-tests")

#: The reported killers, each on its own line, as raw text (json.dumps would escape them differently).
HOSTILE_LINES = [
    r'{"jsonrpc":"2.0","id":5,"method":"\ud800"}',
    r'{"jsonrpc":"2.0","id":"\ud800","method":"ping"}',
    r'{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"\udfff","arguments":{}}}',
    '{"jsonrpc":"2.0","id":7,"method":"ping","params":{"a":' + "[" * 990 + "]" * 990 + "}}",
    "[" * 100_000,
    '{"jsonrpc":"2.0","id":8,"method":"ping","params":{"x":NaN}}',
    '{"jsonrpc":"2.0","id":9,"method":"ping","params":{"x":-Infinity}}',
    '{"jsonrpc":"2.0","id":10,"method":"ping","params":{"x":1e999}}',
    r'{"jsonrpc":"2.0","method":"\ud800"}',  # a notification: answered only because it is unreadable
]

#: What an LLM can hand a tool: half of a surrogate pair.
LONE = "\ud800"


@app.tool()
async def counter(ctx: Context) -> int:
    n: int = await ctx.get_state("n", 0) + 1
    await ctx.set_state("n", n)
    return n


@app.tool()
async def peek(ctx: Context) -> int:
    """The counter without changing it: how a test sees a bystander's state."""
    n: int = await ctx.get_state("n", 0)
    return n


@app.tool()
async def surrogate_text(ctx: Context) -> str:
    return f"before {LONE} after"


@app.tool()
async def surrogate_structured(ctx: Context) -> dict[str, Any]:
    return {"text": LONE, LONE: "key"}


@app.tool()
async def nan_structured(ctx: Context) -> dict[str, Any]:
    return {"x": math.nan, "y": math.inf}


@app.tool()
async def surrogate_log(ctx: Context) -> str:
    await ctx.info(f"log {LONE}")
    await ctx.report_progress(1, 2, f"progress {LONE}")
    return "logged"


@app.tool()
async def nan_progress(ctx: Context) -> str:
    await ctx.report_progress(math.nan, math.inf)
    return "unreachable"


@app.tool()
async def nan_elicit(ctx: Context) -> str:
    await ctx.elicit("pick", {"type": "object", "properties": {"x": {"type": "number", "default": math.nan}}})
    return "unreachable"


@app.tool()
async def deep_result(ctx: Context) -> dict[str, Any]:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    return {"deep": deep}


@app.tool()
async def ask(ctx: Context) -> str:
    """A server-to-client request whose answer the fuzz tests make up (bounded: they may never answer)."""
    answer = await ctx.elicit(
        "name?", {"type": "object", "properties": {"name": {"type": "string"}}}, timeout=0.5
    )
    return repr(answer)[:200]
