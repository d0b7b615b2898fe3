"""What the HTTP transport tests send: the Accept headers, a 2025-11-25 initialize, 2026-07-28 requests."""

from __future__ import annotations

from typing import Any

BOTH = {"accept": "application/json, text/event-stream"}
JSON_ONLY = {"accept": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def stateless(method: str, params: dict[str, Any], version: str = "2026-07-28") -> dict[str, Any]:
    """A 2026-07-28 request: no session, the ``_meta`` envelope in its params."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": 9, "method": method, "params": {**params, "_meta": meta}}


def stateless_headers(method: str, name: str | None = None, version: str = "2026-07-28") -> dict[str, str]:
    """The headers that revision requires of a POST (``Mcp-Method``, ``Mcp-Name``, the version)."""
    out = {**JSON_ONLY, "mcp-protocol-version": version, "mcp-method": method}
    if name is not None:
        out["mcp-name"] = name
    return out
