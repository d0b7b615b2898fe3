"""mcpvisor.runtime.server: the MCP server API and its supervised runtime."""

from ._completion import Completion
from ._context import Context
from ._dispatch import handle_request
from ._env import NoSessionState, RequestEnv
from ._errors import CrashSession, MissingClientCapability, ToolError
from ._input_rounds import InputRequired
from ._limits import ServerLimits
from ._local_env import LocalEnv
from ._media import Audio, Image
from ._port import (
    SERVER_BUSY,
    Headers,
    RequestLimitReached,
    ServerPort,
    SessionBusy,
    SessionLimitReached,
    TransportError,
    UnknownSession,
)
from ._runtime import RunningServer, start_server
from ._server import Server
from ._session_label import session_label
from ._state_errors import (
    StateStoreConflict,
    StateStoreOutcomeUnknown,
    StateStoreTimeout,
    StateStoreUnavailable,
)
from ._state_handle import HandleRefused, StateHandle
from ._stats import ServerStats

__all__ = ["Headers", "ServerPort", "SessionBusy", "TransportError", "UnknownSession"]
__all__ += ["RequestLimitReached", "SessionLimitReached", "SERVER_BUSY"]
__all__ += [
    "Server",
    "Context",
    "ToolError",
    "CrashSession",
    "MissingClientCapability",
    "InputRequired",
    "handle_request",
    "Completion",
    "Image",
    "Audio",
    "RequestEnv",
    "NoSessionState",
    "LocalEnv",
    "StateHandle",
    "HandleRefused",
]
__all__ += ["RunningServer", "session_label", "start_server", "ServerLimits", "ServerStats"]
__all__ += ["StateStoreUnavailable", "StateStoreTimeout", "StateStoreOutcomeUnknown", "StateStoreConflict"]
