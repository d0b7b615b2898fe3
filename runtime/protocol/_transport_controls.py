"""What the runtime tells its transports in-band, beside the MCP messages themselves.

These sit in the protocol layer (not with the runtime's ``ServerPort``) because both sides use them: the
runtime and ``Context`` produce them, every transport reads them, and neither may import the other.
"""

from __future__ import annotations

from typing import Final

import attrs

from ._jsonrpc import Notification

#: The JSON-RPC error code answering a request refused by a request limit (``RequestLimitReached``)
#: over stdio and the in-memory connection (HTTP says 429 instead). JSON-RPC leaves -32000..-32099 to
#: implementations; the SDKs use -32000/-32001 (connection closed, request timeout), MCP -32002 and
#: -32042 and, from 2026-07-28, -32020 upwards, so this one sits apart from all of them.
SERVER_BUSY: Final = -32050

#: The method of `CloseSseStream`; a client that ever saw one would ignore it as an unknown notification.
CLOSE_SSE_STREAM: Final = "notifications/mcpvisor/closeSseStream"


@attrs.frozen
class CloseSseStream(Notification):
    """A control item on a request's ``replies``: "end this request's SSE connection now" (SEP-1699).

    ``ctx.close_sse_stream()`` sends it; the Streamable HTTP transport ends the POST's SSE response
    after a ``retry:`` hint (the request keeps running, the client resumes with GET + Last-Event-ID)
    and never sends it on. Transports with no such connection (stdio, in-memory, an HTTP answer in
    plain JSON) must drop it. It is a ``Notification`` so that a transport that does not know it
    degrades to forwarding an ignorable notification rather than failing on an unknown type.
    """

    method: str = CLOSE_SSE_STREAM
