"""mcpvisor: an OTP-style supervised runtime on trio for MCP servers.

This module is a thin facade; the code lives in ``mcpvisor.runtime``, ``mcpvisor.supervisors`` and
``mcpvisor.backends``. The names below are imported on first use, so ``import mcpvisor.supervisors``
alone never loads the MCP runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpvisor.runtime.server import (
        Audio,
        Completion,
        Context,
        CrashSession,
        Image,
        InputRequired,
        MissingClientCapability,
        Server,
        StateHandle,
        ToolError,
        start_server,
    )

__version__ = "0.1.0"

__all__ = [
    "Audio",
    "Completion",
    "Context",
    "CrashSession",
    "Image",
    "InputRequired",
    "MissingClientCapability",
    "Server",
    "StateHandle",
    "ToolError",
    "__version__",
    "start_server",
]

_LAZY = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from mcpvisor.runtime import server

    value = getattr(server, name)
    globals()[name] = value
    return value
