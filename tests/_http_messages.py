"""What the HTTP transport tests send: the Accept header for both answer forms, a 2025-11-25 initialize."""

from __future__ import annotations

BOTH = {"accept": "application/json, text/event-stream"}
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
