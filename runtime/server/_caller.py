"""`Requester`: what a transport knows about who sent a request, beyond the message itself.

Over Streamable HTTP that is the request's headers and, on a server with authentication
(docs/auth.md), the `Principal` its bearer token names. The transport hands it to
``ServerPort.submit`` with the request; it reaches the handler as ``ctx.principal`` / ``ctx.headers``
and decides who owns what the request creates (``owner_of``). Over stdio and the in-memory transport
there is none: no headers, no principal (stdio takes its credentials from the environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..protocol import JsonRpcError

if TYPE_CHECKING:
    from ..auth import Principal

#: The JSON-RPC error answering a ``tools/call`` whose principal lacks the tool's scopes, where no
#: HTTP status can say 403 (the Streamable HTTP transport answers 403 ``insufficient_scope`` before
#: the request reaches the server; this is the server's own check behind it). Beside ``SERVER_BUSY``
#: (-32050) in the implementation range.
INSUFFICIENT_SCOPE: Final = -32051

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _read_only(headers: Mapping[str, str]) -> Mapping[str, str]:
    return headers if isinstance(headers, MappingProxyType) else MappingProxyType(dict(headers))


@attrs.frozen
class Requester:
    #: Lower-cased header names; values as received (the Authorization header is left out).
    headers: Mapping[str, str] = attrs.field(default=_NO_HEADERS, converter=_read_only)
    principal: Principal | None = None


def owner_key(principal: Any) -> str | None:
    """The ownership key of a principal (``Principal.key``), None without one."""
    key = getattr(principal, "key", None)
    return key if isinstance(key, str) else None


def check_tool_scopes(name: str, required: tuple[str, ...], principal: Any) -> None:
    """Refuse (``INSUFFICIENT_SCOPE``) a call of tool ``name`` whose principal lacks its scopes. No
    principal, no check: the server does not authenticate (or the transport is stdio)."""
    if not required or principal is None:
        return
    missing = principal.missing_scopes(required)
    if missing:
        raise JsonRpcError(
            INSUFFICIENT_SCOPE,
            f"insufficient scope: tool {name!r} needs the scopes {' '.join(missing)}",
            {"requiredScopes": list(required), "missingScopes": missing},
        )
