"""mcpvisor.runtime.server: the MCP server API and its supervised runtime."""

from ._port import Headers, ServerPort, SessionBusy, TransportError, UnknownSession

__all__ = ["Headers", "ServerPort", "SessionBusy", "TransportError", "UnknownSession"]
