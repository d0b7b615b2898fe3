"""mcpvisor.runtime.tree: the supervised runtime a ``Server`` runs in.

``start_server`` builds one supervision tree per server (docs/architecture.md draws it): the state store
and task runtime actors, the session and handle keepers, the event bus, the reapers, the stateless
request runner and the janitor. Transports drive it through ``ServerPort``. Users import these names
from ``mcpvisor``.
"""

from ._dispatch import handle_request
from ._limits import ServerLimits
from ._port import (
    SERVER_BUSY,
    Headers,
    RequestLimitReached,
    ServerPort,
    SessionBusy,
    SessionLimitReached,
    StandaloneSink,
    TransportError,
    UnknownSession,
)
from ._runtime import RunningServer, start_server
from ._session_label import session_label
from ._stats import ServerStats

__all__ = [
    "SERVER_BUSY",
    "Headers",
    "RequestLimitReached",
    "RunningServer",
    "ServerLimits",
    "ServerPort",
    "ServerStats",
    "SessionBusy",
    "SessionLimitReached",
    "StandaloneSink",
    "TransportError",
    "UnknownSession",
    "handle_request",
    "session_label",
    "start_server",
]
