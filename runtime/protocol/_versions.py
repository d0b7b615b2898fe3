"""Protocol revisions we speak, how `initialize` negotiates one, and what differs between them.

Revisions are an enumerated set, not an ordered scalar: an unknown string is never "newer" than a known
one, so every question goes through the tuples below.
"""

from __future__ import annotations

from typing import Final

from ._jsonrpc import UNSUPPORTED_PROTOCOL_VERSION, ErrorResponse, RequestId, error_response

STATELESS_VERSIONS: Final[tuple[str, ...]] = ("2026-07-28",)
"""Revisions with the per-request `_meta` envelope and no handshake."""

HANDSHAKE_VERSIONS: Final[tuple[str, ...]] = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
"""Revisions negotiated by the `initialize` handshake, newest first."""

SUPPORTED_VERSIONS: Final[tuple[str, ...]] = (*STATELESS_VERSIONS, *HANDSHAKE_VERSIONS)
"""Every revision this server serves, newest first."""

LATEST_VERSION: Final = SUPPORTED_VERSIONS[0]
LATEST_STATELESS_VERSION: Final = STATELESS_VERSIONS[0]
LATEST_HANDSHAKE_VERSION: Final = HANDSHAKE_VERSIONS[0]

_BATCH_VERSIONS: Final = frozenset({"2025-03-26"})

# Methods that exist only on one side of the 2026-07-28 line. Everything else (tools/*, resources/list,
# resources/read, resources/templates/list, prompts/*, completion/complete) is common to both.
HANDSHAKE_ONLY_METHODS: Final = frozenset(
    {
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
        "notifications/initialized",
        "notifications/progress",
        "notifications/roots/list_changed",
    }
)
STATELESS_ONLY_METHODS: Final = frozenset({"server/discover", "subscriptions/listen"})


def is_supported(version: str) -> bool:
    return version in SUPPORTED_VERSIONS


def is_stateless(version: str) -> bool:
    """True for revisions that carry the `_meta` envelope on every request (no session)."""
    return version in STATELESS_VERSIONS


def negotiate_version(requested: object) -> str:
    """The version the server answers `initialize` with.

    The client's own version if we speak it over the handshake, else our latest handshake version (the
    client then decides whether it can live with it). A client asking for 2026-07-28 in `initialize` gets
    2025-11-25: that revision has no handshake, so offering it back would be meaningless.
    """
    if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS:
        return requested
    return LATEST_HANDSHAKE_VERSION


def allows_batches(version: str | None) -> bool:
    """JSON-RPC batches: added by 2025-03-26, removed again by 2025-06-18; never before negotiation."""
    return version in _BATCH_VERSIONS


def method_exists_in(method: str, version: str) -> bool:
    """Whether `method` (a client request or notification) belongs to revision `version`."""
    if is_stateless(version):
        return method not in HANDSHAKE_ONLY_METHODS
    return method not in STATELESS_ONLY_METHODS


def unsupported_version_error(
    request_id: RequestId | None,
    requested: str,
    supported: tuple[str, ...] = SUPPORTED_VERSIONS,
) -> ErrorResponse:
    """The -32022 answer: `data` names what was asked and what we serve, so the client can retry.

    We list the handshake revisions too: the official client falls back to `initialize` when the list
    holds one of them, and retries the envelope at a mutual stateless version otherwise.
    """
    return error_response(
        request_id,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": list(supported), "requested": requested},
    )
