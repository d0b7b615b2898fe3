"""The HTTP floor of benchmarks/server.py: a trivial ASGI app that fakes the MCP exchange, no MCP at all.

It answers what ``http_load.py`` sends with fixed JSON (``initialize`` with a fresh ``Mcp-Session-Id``,
202 for notifications, ``tools/call`` as ``add``), so its calls/s is what the HTTP server alone can do
on this machine: the ceiling for any MCP server on it. Served two ways, each by the stack one side uses:

- ``--server hypercorn``: hypercorn's trio worker (our transport's server; run with our venv's Python);
- ``--server uvicorn``: uvicorn on asyncio (FastMCP's; run with the FastMCP venv's Python).

Both speak HTTP/1.1 through h11 here (no uvloop or httptools in either venv).
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "DELETE" or not body:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    msg = json.loads(body)
    if "id" not in msg:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-type", b"application/json")]
    if msg["method"] == "initialize":
        headers.append((b"mcp-session-id", uuid.uuid4().hex.encode()))
        result: dict[str, Any] = {
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "floor", "version": "0"},
        }
    else:
        args = msg["params"].get("arguments") or {}
        total = args.get("a", 0) + args.get("b", 1)
        result = {"content": [{"type": "text", "text": str(total)}], "isError": False}
    out = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=["hypercorn", "uvicorn"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.server == "uvicorn":
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    else:
        import trio
        from hypercorn.config import Config
        from hypercorn.trio import serve

        config = Config()
        config.bind = [f"127.0.0.1:{args.port}"]
        config.accesslog = None
        trio.run(serve, app, config)


if __name__ == "__main__":
    main()
