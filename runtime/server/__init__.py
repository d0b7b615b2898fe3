"""mcpvisor.runtime.server: the authoring API, what a server's author writes against.

``Server`` and its decorators, ``Context``, the errors a handler raises or catches, media, state
handles, input rounds and ``LocalEnv`` (run a handler with no runtime). The supervised runtime that
serves a ``Server`` is ``mcpvisor.runtime.tree``; users import both from ``mcpvisor``.

The runtime's names were importable from here before the split; they still are, resolved on first use
(the runtime imports this package, so importing it back here eagerly would be a cycle).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._completion import Completion
from ._context import Context
from ._env import NoSessionState, RequestEnv
from ._errors import CrashSession, MissingClientCapability, ToolError
from ._input_rounds import InputRequired
from ._local_env import LocalEnv
from ._media import Audio, Image
from ._server import Server
from ._state_errors import (
    StateStoreConflict,
    StateStoreOutcomeUnknown,
    StateStoreTimeout,
    StateStoreUnavailable,
)
from ._state_handle import HandleRefused, StateHandle

if TYPE_CHECKING:
    from ..tree import (
        SERVER_BUSY,
        Headers,
        RequestLimitReached,
        RunningServer,
        ServerLimits,
        ServerPort,
        ServerStats,
        SessionBusy,
        SessionLimitReached,
        TransportError,
        UnknownSession,
        handle_request,
        session_label,
        start_server,
    )

#: Names that moved to ``mcpvisor.runtime.tree`` (import them from ``mcpvisor``).
_MOVED_TO_TREE = frozenset(
    {
        "SERVER_BUSY",
        "Headers",
        "RequestLimitReached",
        "RunningServer",
        "ServerLimits",
        "ServerPort",
        "ServerStats",
        "SessionBusy",
        "SessionLimitReached",
        "TransportError",
        "UnknownSession",
        "handle_request",
        "session_label",
        "start_server",
    }
)

__all__ = [
    "SERVER_BUSY",
    "Audio",
    "Completion",
    "Context",
    "CrashSession",
    "HandleRefused",
    "Headers",
    "Image",
    "InputRequired",
    "LocalEnv",
    "MissingClientCapability",
    "NoSessionState",
    "RequestEnv",
    "RequestLimitReached",
    "RunningServer",
    "Server",
    "ServerLimits",
    "ServerPort",
    "ServerStats",
    "SessionBusy",
    "SessionLimitReached",
    "StateHandle",
    "StateStoreConflict",
    "StateStoreOutcomeUnknown",
    "StateStoreTimeout",
    "StateStoreUnavailable",
    "ToolError",
    "TransportError",
    "UnknownSession",
    "handle_request",
    "session_label",
    "start_server",
]


def __getattr__(name: str) -> Any:
    if name not in _MOVED_TO_TREE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("mcpvisor.runtime.tree"), name)
    globals()[name] = value
    return value
