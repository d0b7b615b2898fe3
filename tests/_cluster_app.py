"""The server every node of the cluster tests runs (``mcpvisor run tests/_cluster_app.py:server``).

Each tool answers which node served it (``MCPVISOR_TEST_NODE``, set by the harness), so a test can
tell local from forwarded and survivor from dead. The writes are auditable:

- ``counter`` adds one to the session's ``count`` (not idempotent: a retried call may count twice);
- ``append`` adds a token to the session's ``tokens`` list unless it is already there, so it is
  idempotent: a client may retry it after an ambiguous failure, and ``tokens`` then shows whether every
  acknowledged token is stored exactly once;
- ``touch`` raises ``notifications/resources/updated`` for a ``note://`` URI, on whatever node runs it;
- ``chatty`` logs one line at each level, so a client sees which of them its session's log level lets
  through (the level is a session setting, kept in the store);
- ``ask`` elicits a name from the client mid-call, ``hold`` waits until cancelled and ``held`` lists the
  cancelled ``hold`` calls of the node (tests/test_cluster_forwarding_process.py).
"""

from __future__ import annotations

import os
from typing import Any

import trio
from mcpvisor.runtime.server import Context, Server

NODE = os.environ.get("MCPVISOR_TEST_NODE", "?")

server = Server("cluster-test-app")


@server.resource_template("note://{name}")
async def note(name: str) -> str:
    return f"note {name}"


@server.tool()
async def counter(ctx: Context) -> dict[str, Any]:
    """One more on the session's counter (an atomic update in the store)."""
    count: int = await ctx.update_state("count", lambda n: n + 1, default=0)
    return {"count": count, "node": NODE}


@server.tool()
async def append(ctx: Context, token: str, pause: float = 0.0) -> dict[str, Any]:
    """Store ``token`` in the session's ``tokens`` list once, after ``pause`` seconds."""
    if pause:
        await trio.sleep(pause)
    tokens: list[str] = await ctx.update_state(
        "tokens", lambda old: old if token in old else [*old, token], default=[]
    )
    return {"stored": len(tokens), "node": NODE}


@server.tool()
async def tokens(ctx: Context) -> dict[str, Any]:
    """The session's stored tokens, in the order they were stored."""
    stored: list[str] = await ctx.get_state("tokens", [])
    return {"tokens": stored, "count": await ctx.get_state("count", 0), "node": NODE}


@server.tool()
async def touch(uri: str) -> dict[str, Any]:
    """Tell the sessions subscribed to ``uri`` that it changed."""
    server.notify_resource_updated(uri)
    return {"node": NODE}


@server.tool()
async def chatty(ctx: Context) -> dict[str, Any]:
    """One log message at debug, info, warning and error."""
    for level in ("debug", "info", "warning", "error"):
        await ctx.log(level, f"{level} from {NODE}")  # type: ignore[arg-type]
    return {"node": NODE}


@server.tool()
async def whoami(ctx: Context) -> dict[str, Any]:
    """The node's name and the session id (a request that touches no state)."""
    return {"node": NODE, "session": ctx.session_id}


#: Requests of ``hold`` cancelled on this node (their request ids), as ``held`` reports.
CANCELLED: list[str] = []


@server.tool()
async def ask(ctx: Context) -> dict[str, Any]:
    """Elicit a name from the client and greet it (a server-to-client request mid-call)."""
    answer = await ctx.elicit("name?", {"type": "object", "properties": {"name": {"type": "string"}}})
    return {"hello": answer["content"]["name"], "node": NODE}


@server.tool()
async def hold(ctx: Context) -> dict[str, Any]:
    """Wait until cancelled (then ``held`` counts it)."""
    try:
        await trio.sleep_forever()
    finally:
        CANCELLED.append(str(ctx.request_id))
    return {"node": NODE}


@server.tool()
async def held(ctx: Context) -> dict[str, Any]:
    """The request ids of ``hold`` calls cancelled on this node."""
    return {"cancelled": list(CANCELLED), "node": NODE}
