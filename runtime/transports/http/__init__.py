"""The Streamable HTTP transport: an ASGI app driving a `ServerPort`, and `serve_http` to run it.

One endpoint (default `/mcp`) takes POST (one JSON-RPC message; a batch only for 2025-03-26 clients),
GET (the session's standalone SSE stream, or the resumption of a POST stream via `Last-Event-ID`) and
DELETE (end the session). Both protocol eras share it:

- handshake era (2025-11-25 and earlier): `initialize` without `Mcp-Session-Id` creates a session and the
  response carries its id; every later message names it (400 without, 404 for an unknown one);
- stateless era (2026-07-28): a request whose `params._meta` carries the protocol-version key needs no
  session; its `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers must agree with the body
  (400 with -32020), and GET / DELETE from such clients answer 405.

The transport never interprets MCP beyond that routing: everything else happens behind the port, and
every failure is an HTTP status with a JSON-RPC error body, never a dropped connection. See docs/http.md.

The package's modules, one job each: `_options` (`HttpOptions`), `_app` (the ASGI entry and the
routing), `_state` (the shared state and session lookups), `_session_post` (a session's POSTs),
`_stateless` (2026-07-28 requests), `_streams` (SSE stream serving, GET, DELETE), `_replies` (waiting
for a request's replies), `_server` (`serve_http`); and below them the HTTP machinery (`_exchange`,
`_guard`, `_events`, `_streaming`, `_auth`, `_asgi_h11` with its request parsing on httptools
(`_httptools_reader`, `_httptools_connection`), `_asgi_limits`, `_hypercorn_runner`,
`_connection_limits`, `_listen_error`).
"""

from __future__ import annotations

import logging

from ._app import McpHttpApp, mcp_asgi_app
from ._headers import BATCH_VERSION, LAST_EVENT_ID_HEADER, SESSION_HEADER, VERSION_HEADER
from ._listen_error import ListenError, open_listeners
from ._options import HttpOptions
from ._replies import READY_WAIT
from ._server import HTTP_SERVERS, serve_http

__all__ = [
    "BATCH_VERSION",
    "HTTP_SERVERS",
    "LAST_EVENT_ID_HEADER",
    "READY_WAIT",
    "SESSION_HEADER",
    "VERSION_HEADER",
    "HttpOptions",
    "ListenError",
    "McpHttpApp",
    "mcp_asgi_app",
    "open_listeners",
    "serve_http",
]

logger = logging.getLogger("mcpvisor.runtime.transports")
