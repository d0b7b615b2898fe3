"""``ServerLimits``: the bounds one running server enforces, so no client can take all of it.

Each limit answers its excess the same way everywhere: the ``ServerPort`` raises (``SessionLimitReached``,
``RequestLimitReached``, both ``SessionBusy`` with a ``retry_after``), and each transport turns that into
its wire form (HTTP 503 / 429 with ``Retry-After``; over stdio and the in-memory connection a JSON-RPC
error ``SERVER_BUSY``, -32050). The defaults follow the official SDK (10,000 sessions) and FastestMCP
(128 running and 1,024 waiting requests per session).
"""

from __future__ import annotations

from typing import Any, Final

import attrs


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


def _none_or_at_least_one(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be at least 1 (or None for no cap), got {value}")


@attrs.frozen
class ServerLimits:
    """What ``start_server`` was given; ``RunningServer.limits`` exposes it."""

    #: Live sessions at once; ``initialize`` beyond it is refused (HTTP 503). None: no cap.
    max_sessions: int | None = attrs.field(default=10_000, validator=_none_or_at_least_one)
    #: Requests of one session running at once; more wait for a turn (FIFO).
    max_requests_per_session: int = attrs.field(default=128, validator=_at_least_one)
    #: Requests of one session waiting for a turn; beyond it a request is refused (HTTP 429, -32050).
    max_queued_requests_per_session: int = attrs.field(default=1024, validator=_at_least_one)
    #: 2026-07-28 (stateless) requests running at once, server-wide; beyond it refused likewise.
    max_stateless_requests: int = attrs.field(default=1024, validator=_at_least_one)


DEFAULT_LIMITS: Final = ServerLimits()
