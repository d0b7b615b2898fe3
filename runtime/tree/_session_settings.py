"""What a session negotiated, as stored under a reserved key so a restarted actor can carry on.

Written at ``initialize`` and on every change (log level, subscriptions). The record is stored as a plain
msgpack map (not a registered attrs class), so an older or newer process can still read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs
from mcpvisor.backends import decode, encode

from ..protocol import INTERNAL_ERROR, LOGGING_LEVELS, JsonRpcError, LoggingLevel
from ..server._reserved_keys import RESERVED_PREFIX

#: Where a session's settings live in the SessionStateStore.
SETTINGS_KEY: Final = RESERVED_PREFIX + "session"
#: ``initialize`` ``capabilities.experimental`` key: the client asks for an idle lifetime with
#: ``{"seconds": N}`` (experimental capability values must be objects); the server answers the lifetime
#: it grants, in the same shape, under the same key of its own capabilities.
IDLE_TIMEOUT_CAPABILITY: Final = "io.mcpvisor/idleTimeout"


@attrs.frozen
class SessionSettings:
    protocol_version: str
    client_capabilities: Mapping[str, Any]
    client_info: Mapping[str, Any] | None
    idle_timeout: float
    log_level: LoggingLevel | None = None
    subscriptions: tuple[str, ...] = ()
    #: The principal that owns the session (docs/auth.md); written only when there is one.
    owner: str | None = None

    def to_bytes(self) -> bytes:
        owner = {} if self.owner is None else {"owner": self.owner}
        return encode(
            {
                **owner,
                "protocol_version": self.protocol_version,
                "client_capabilities": dict(self.client_capabilities),
                "client_info": None if self.client_info is None else dict(self.client_info),
                "idle_timeout": self.idle_timeout,
                "log_level": self.log_level,
                "subscriptions": list(self.subscriptions),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionSettings:
        raw = decode(data)
        level = raw.get("log_level")
        return cls(
            protocol_version=str(raw["protocol_version"]),
            client_capabilities=raw.get("client_capabilities") or {},
            client_info=raw.get("client_info"),
            idle_timeout=float(raw["idle_timeout"]),
            log_level=level if level in LOGGING_LEVELS else None,
            subscriptions=tuple(raw.get("subscriptions") or ()),
            owner=raw["owner"] if isinstance(raw.get("owner"), str) else None,
        )


def negotiate_idle_timeout(server_timeout: float, client_capabilities: Mapping[str, Any]) -> float:
    """The server's lifetime, or the client's if it asked for a shorter positive one."""
    experimental = client_capabilities.get("experimental")
    asked = experimental.get(IDLE_TIMEOUT_CAPABILITY) if isinstance(experimental, Mapping) else None
    if isinstance(asked, Mapping):
        asked = asked.get("seconds")
    if isinstance(asked, int | float) and not isinstance(asked, bool) and 0 < asked < server_timeout:
        return float(asked)
    return server_timeout


def check_user_key(key: str) -> None:
    """A handler's key may not reach into the runtime's own records (a JsonRpcError so that the
    message, which names the server author's mistake, reaches the client as is)."""
    if key.startswith(RESERVED_PREFIX):
        raise JsonRpcError(
            INTERNAL_ERROR, f"state keys starting with {RESERVED_PREFIX!r} are reserved for the runtime"
        )


def stored_owner(record: bytes | None) -> str | None:
    """The owner in a stored settings record (None: none recorded, or not a settings record)."""
    if record is None:
        return None
    try:
        raw = decode(record)
    except Exception:
        return None
    owner = raw.get("owner") if isinstance(raw, Mapping) else None
    return owner if isinstance(owner, str) else None
