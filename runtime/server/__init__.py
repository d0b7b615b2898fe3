"""mcpvisor.runtime.server: the MCP server API and its supervised runtime."""

from ._completion import Completion
from ._context import Context
from ._dispatch import handle_request
from ._env import NoSessionState, RequestEnv
from ._errors import CrashSession, MissingClientCapability, ToolError
from ._input_rounds import InputRequired
from ._local_env import LocalEnv
from ._media import Audio, Image
from ._port import Headers, ServerPort, SessionBusy, TransportError, UnknownSession
from ._runtime import RunningServer, start_server
from ._server import Server
from ._state_handle import HandleRefused, StateHandle

__all__ = ["Headers", "ServerPort", "SessionBusy", "TransportError", "UnknownSession"]
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
__all__ += ["RunningServer", "start_server"]
