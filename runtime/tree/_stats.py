"""``ServerStats``: the counters of what a running server refused, dropped or cancelled to stay bounded.

Every limit the server enforces silently from the client's point of view (a notification dropped for a
slow reader, a session or request refused at a cap, a request cancelled because its client left) is
counted here, so an operator or a test can see it happen: ``RunningServer.stats``. The transports
count into the same object when their port has one (``McpHttpApp.stats``).
"""

from __future__ import annotations

import attrs


@attrs.define
class ServerStats:
    """Monotonic counters since the server started; read them, never reset them."""

    #: Notifications a slow reader never got: evicted unwritten from an SSE stream's replay log, or
    #: refused by a full standalone (GET) stream. Answers and server-to-client requests never count
    #: here: they are never dropped.
    notifications_dropped: int = 0
    #: ``initialize`` refused because ``max_sessions`` sessions were live (HTTP 503).
    sessions_refused: int = 0
    #: Requests refused by a session's in-flight bound or the stateless bound (HTTP 429, -32029).
    requests_refused: int = 0
    #: Requests cancelled because their client closed the HTTP response it was waiting on.
    requests_abandoned: int = 0

    def count_dropped(self, count: int = 1) -> None:
        self.notifications_dropped += count
