"""Exceptions a handler raises on purpose, and what each one becomes on the wire."""

from __future__ import annotations

from ..protocol import MISSING_REQUIRED_CLIENT_CAPABILITY, JsonRpcError


class ToolError(Exception):
    """Raise from a tool to report a failure the *model* should see and may recover from.

    It becomes a ``CallToolResult`` with ``isError: true`` and the message as its text, not a JSON-RPC
    error: the spec keeps protocol errors for protocol problems, and a model never sees those. Raised from
    a resource or prompt handler (which have no error result) it becomes -32603 with the message.
    """


class CrashSession(Exception):
    """Raise from a handler to crash the whole session actor, on purpose.

    Dispatch never catches it: it escapes to the session actor, whose supervisor restarts it. The demo's
    crash tool and the supervision tests use it; ordinary failures should be ``ToolError`` or plain
    exceptions (which are answered -32603 and leave the session running).
    """


class MissingClientCapability(JsonRpcError):
    """The handler needs something (elicitation, sampling, roots) the client did not declare.

    A ``JsonRpcError`` (-32021) so, left uncaught, the request is answered with an error naming the
    capability; a handler that can do without it catches this and falls back.
    """

    def __init__(self, capability: str) -> None:
        super().__init__(
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            f"the client did not declare the {capability!r} capability this request needs",
            {"requiredCapabilities": {capability: {}}},
        )
        self.capability = capability
