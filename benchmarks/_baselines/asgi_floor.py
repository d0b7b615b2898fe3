"""The HTTP floor of benchmarks/server.py: a trivial ASGI app that fakes the MCP exchange, no MCP at all.

It answers what ``http_load.py`` sends with fixed JSON (``initialize`` with a fresh ``Mcp-Session-Id``,
202 for notifications, ``tools/call`` as ``add``), so its calls/s is what the HTTP server alone can do
on this machine: the ceiling for any MCP server on it. Served several ways:

- ``--server hypercorn``: hypercorn's trio worker (our transport's server until 2026-12; run with our
  venv's Python);
- ``--server mcpvisor-h11``: our own ASGI server (``mcpvisor.runtime.transports.http._asgi_h11``, the
  default of ``serve_http``; run with our venv's Python);
- ``--server uvicorn``: uvicorn on asyncio (FastMCP's; run with the FastMCP venv's Python);
- ``--server trio-h11``: no ASGI server at all, the same answers from h11 driven directly on trio
  sockets (``trio.serve_tcp``), one ``send_all`` per response: what trio itself allows, i.e. how far a
  leaner HTTP driver than hypercorn could take our transport (run with our venv's Python).

All of them speak HTTP/1.1 through h11 here (no uvloop or httptools in either venv).
"""

from __future__ import annotations

import argparse
import functools
import json
import uuid
from typing import Any


def answer(body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body for one POSTed JSON-RPC message (or an empty DELETE)."""
    if not body:
        return 200, [], b""
    msg = json.loads(body)
    if "id" not in msg:
        return 202, [], b""
    headers = [("content-type", "application/json")]
    if msg["method"] == "initialize":
        headers.append(("mcp-session-id", uuid.uuid4().hex))
        result: dict[str, Any] = {
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "floor", "version": "0"},
        }
    else:
        args = msg["params"].get("arguments") or {}
        total = args.get("a", 0) + args.get("b", 1)
        result = {"content": [{"type": "text", "text": str(total)}], "isError": False}
    return 200, headers, json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()


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
    status, headers, out = answer(b"" if scope["method"] == "DELETE" else body)
    raw = [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": out})


async def serve_h11(stream: Any) -> None:
    """One connection: h11 on a trio stream, each response written with a single ``send_all``."""
    import h11

    conn = h11.Connection(h11.SERVER)
    method, body = b"", b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                return
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            method, body = event.method, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            status, headers, out = answer(b"" if method == b"DELETE" else body)
            headers.append(("content-length", str(len(out))))
            wire = conn.send(h11.Response(status_code=status, headers=headers)) or b""
            wire += (conn.send(h11.Data(data=out)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
            await stream.send_all(wire)
            conn.start_next_cycle()
        elif isinstance(event, h11.ConnectionClosed):
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--server", choices=["hypercorn", "uvicorn", "trio-h11", "mcpvisor-h11"], required=True
    )
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.server == "uvicorn":
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    elif args.server == "mcpvisor-h11":
        import trio
        from mcpvisor.runtime.transports.http._asgi_h11 import serve_asgi

        trio.run(functools.partial(serve_asgi, app, host="127.0.0.1", port=args.port))
    elif args.server == "trio-h11":
        import trio

        trio.run(functools.partial(trio.serve_tcp, serve_h11, args.port, host="127.0.0.1"))
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
