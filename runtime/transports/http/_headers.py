"""The header names and fixed header sets of the Streamable HTTP transport, in one place."""

from __future__ import annotations

from typing import Final

from ._guard import SSE

SESSION_HEADER: Final = "mcp-session-id"
VERSION_HEADER: Final = "mcp-protocol-version"
LAST_EVENT_ID_HEADER: Final = "last-event-id"
BATCH_VERSION: Final = "2025-03-26"
"""The only revision with JSON-RPC batches, and the one assumed when `MCP-Protocol-Version` is absent."""

SSE_HEADERS: Final = (("content-type", SSE), ("cache-control", "no-cache"), ("x-accel-buffering", "no"))
EXPOSED_HEADERS: Final = "mcp-session-id, mcp-protocol-version, www-authenticate"
ALLOWED_REQUEST_HEADERS: Final = (
    "content-type, accept, authorization, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, "
    "last-event-id"
)
