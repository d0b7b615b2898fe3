"""The 2026-07-28 (stateless) request envelope: read it, check it, and finish results for it.

In this revision there is no `initialize`: every request carries in `params._meta` the protocol version,
the client's capabilities (required, may be `{}`) and, optionally, its info and a log level. The checks
run in the order the official SDK uses, first failure wins:

1. `_meta` is an object holding the version and capabilities keys        -> -32602 naming the missing keys
2. (HTTP only) headers agree with the body (`check_stateless_headers`)    -> -32020
3. the version is a string                                                -> -32602
4. the version is one we serve on this path                               -> -32022 {supported, requested}
   (`supported` lists the stateless revisions only, as `server/discover` does)
5. the method exists in that revision (`ping`, `logging/setLevel`, ...)   -> -32601
6. capabilities / client info / log level have the right shape            -> -32602
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs
import cattrs

from ._jsonrpc import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    ErrorResponse,
    Message,
    Request,
    error_response,
)
from ._records import LOGGING_LEVELS, ClientCapabilities, Implementation, LoggingLevel
from ._versions import STATELESS_VERSIONS, method_exists_in, unsupported_version_error
from ._wire import from_wire, to_wire

PROTOCOL_VERSION_META_KEY: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META_KEY: Final = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_META_KEY: Final = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_META_KEY: Final = "io.modelcontextprotocol/logLevel"
SERVER_INFO_META_KEY: Final = "io.modelcontextprotocol/serverInfo"

PROTOCOL_VERSION_HEADER: Final = "mcp-protocol-version"
METHOD_HEADER: Final = "mcp-method"
NAME_HEADER: Final = "mcp-name"

NAME_BEARING_METHODS: Final[Mapping[str, str]] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
}
"""Method -> the params key mirrored in the `Mcp-Name` header."""

TASK_NAME_METHODS: Final[Mapping[str, str]] = {
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}
"""SEP-2663 tasks methods whose `Mcp-Name` header, when sent, must be the `taskId`."""

CACHEABLE_METHODS: Final = frozenset(
    {
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
        "resources/read",
        "server/discover",
    }
)
"""Methods whose 2026-07-28 results must carry `ttlMs` and `cacheScope`."""


@attrs.frozen
class StatelessRequestContext:
    """What one 2026-07-28 request says about its client; nothing outlives the request."""

    protocol_version: str
    client_capabilities: ClientCapabilities
    client_info: Implementation | None = None
    log_level: LoggingLevel | None = None
    progress_token: str | int | None = None


def has_stateless_envelope(params: Mapping[str, Any] | None) -> bool:
    """Whether a request claims the 2026-07-28 envelope (the reserved version key is the signal).

    A bare `_meta` proves nothing: handshake-era requests put `progressToken` there.
    """
    if not params:
        return False
    meta = params.get("_meta")
    return isinstance(meta, Mapping) and PROTOCOL_VERSION_META_KEY in meta


def is_stateless_request(
    message: Message | None, *, session_id: str | None = None, protocol_version: str | None = None
) -> bool:
    """Whether ``message`` belongs to the 2026-07-28 (stateless) era: the one place this is decided,
    for every transport (HTTP, stdio, in-memory), the session lifecycle and the runtime.

    A request says so itself, by its envelope (``has_stateless_envelope``), whatever came with it. For
    anything else (a notification, a response, a request without the envelope, or no message at all,
    as for an HTTP GET) the transport's knowledge of the client decides: no session, and a stateless
    revision announced out of band (HTTP's ``MCP-Protocol-Version`` header).
    """
    if isinstance(message, Request) and has_stateless_envelope(message.params):
        return True
    return session_id is None and protocol_version in STATELESS_VERSIONS


def extract_request_context(
    request: Request,
    *,
    supported: tuple[str, ...] = STATELESS_VERSIONS,
    advertised: tuple[str, ...] | None = None,
) -> StatelessRequestContext | ErrorResponse:
    """Validate a 2026-07-28 request's `_meta` and return its context, or the exact error to answer with.

    `supported` are the versions accepted in the envelope; `advertised` is the list a -32022 names,
    `supported` by default: the versions served *on this path*, the same list `server/discover`
    advertises. Naming the handshake revisions there would promise versions the envelope refuses (a
    client retrying the envelope with 2025-11-25 gets -32022 again); a client that wants the handshake
    learns its versions from `initialize`.
    """
    rid = request.id
    meta = request.params.get("_meta") if request.params is not None else None
    if not isinstance(meta, Mapping):
        return error_response(
            rid,
            INVALID_PARAMS,
            f"params._meta must be an object carrying {PROTOCOL_VERSION_META_KEY!r} "
            f"and {CLIENT_CAPABILITIES_META_KEY!r}",
        )
    missing = [key for key in (PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY) if key not in meta]
    if missing:
        return error_response(
            rid, INVALID_PARAMS, f"params._meta is missing the required key(s): {', '.join(missing)}"
        )
    version = meta[PROTOCOL_VERSION_META_KEY]
    if not isinstance(version, str):
        return error_response(
            rid, INVALID_PARAMS, f"params._meta[{PROTOCOL_VERSION_META_KEY!r}] must be a string"
        )
    if version not in supported:
        return unsupported_version_error(rid, version, supported if advertised is None else advertised)
    if not method_exists_in(request.method, version):
        return error_response(rid, METHOD_NOT_FOUND, f"Method not found: {request.method} (not in {version})")
    try:
        capabilities = from_wire(meta[CLIENT_CAPABILITIES_META_KEY], ClientCapabilities)
    except (cattrs.BaseValidationError, ValueError, TypeError, AttributeError):
        return error_response(
            rid,
            INVALID_PARAMS,
            f"params._meta[{CLIENT_CAPABILITIES_META_KEY!r}] must be a capabilities object",
        )
    client_info: Implementation | None = None
    raw_info = meta.get(CLIENT_INFO_META_KEY)
    if raw_info is not None:
        try:
            client_info = from_wire(raw_info, Implementation)
        except (cattrs.BaseValidationError, ValueError, TypeError, AttributeError):
            return error_response(
                rid,
                INVALID_PARAMS,
                f"params._meta[{CLIENT_INFO_META_KEY!r}] must be an Implementation with name and version",
            )
    log_level = meta.get(LOG_LEVEL_META_KEY)
    if log_level is not None and log_level not in LOGGING_LEVELS:
        return error_response(
            rid,
            INVALID_PARAMS,
            f"params._meta[{LOG_LEVEL_META_KEY!r}] must be one of {', '.join(LOGGING_LEVELS)}",
        )
    token = meta.get("progressToken")
    if not (isinstance(token, str | int) and not isinstance(token, bool)):
        token = None
    return StatelessRequestContext(version, capabilities, client_info, log_level, token)


_B64_SENTINEL = re.compile(r"=\?base64\?(?P<payload>[A-Za-z0-9+/]*={0,2})\?=")


def decode_header_value(value: str | None) -> str | None:
    """Undo the `=?base64?...?=` wrapping clients use for header values that are not plain ASCII."""
    if value is None:
        return None
    match = _B64_SENTINEL.fullmatch(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group("payload"), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_stateless_headers(request: Request, headers: Mapping[str, str]) -> ErrorResponse | None:
    """The HTTP rung: `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` must match the body (-32020).

    `headers` is keyed by lower-case name. Returns None when they agree.
    """
    meta = request.params.get("_meta") if request.params is not None else None
    body_version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, Mapping) else None
    header_version = headers.get(PROTOCOL_VERSION_HEADER)
    if header_version is None or header_version != body_version:
        return error_response(
            request.id,
            HEADER_MISMATCH,
            "MCP-Protocol-Version header does not match the request's protocol version",
        )
    if headers.get(METHOD_HEADER) != request.method:
        return error_response(
            request.id, HEADER_MISMATCH, "Mcp-Method header does not match the request's method"
        )
    task_key = TASK_NAME_METHODS.get(request.method)
    sent_name = headers.get(NAME_HEADER)
    # SEP-2663 routing headers: on tasks/* Mcp-Name carries the taskId; checked when sent.
    if task_key is not None and request.params is not None and sent_name is not None:  # noqa: SIM102
        if decode_header_value(sent_name) != request.params.get(task_key):
            return error_response(
                request.id, HEADER_MISMATCH, f"Mcp-Name header does not match the request's {task_key!r}"
            )
    name_key = NAME_BEARING_METHODS.get(request.method)
    if name_key is not None and request.params is not None:
        body_value = request.params.get(name_key)
        if body_value is not None and decode_header_value(headers.get(NAME_HEADER)) != body_value:
            return error_response(
                request.id, HEADER_MISMATCH, f"Mcp-Name header does not match the request's {name_key!r}"
            )
    return None


PARAM_HEADER_PREFIX: Final = "mcp-param-"
"""SEP-2243: a tool argument annotated `"x-mcp-header": "Region"` is mirrored in `Mcp-Param-Region`."""


def param_headers_of(input_schema: Mapping[str, Any]) -> dict[str, str]:
    """Top-level property -> lower-case header name, for each property carrying `x-mcp-header`."""
    properties = input_schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    out: dict[str, str] = {}
    for prop, sub in properties.items():
        name = sub.get("x-mcp-header") if isinstance(sub, Mapping) else None
        if isinstance(name, str) and name:
            out[prop] = PARAM_HEADER_PREFIX + name.lower()
    return out


def _header_form(value: Any) -> str | None:
    """How a primitive argument reads in a header (None: not mirrored)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def check_param_headers(
    request: Request, headers: Mapping[str, str], bindings: Mapping[str, str]
) -> ErrorResponse | None:
    """The `Mcp-Param-*` headers of a `tools/call` must mirror the annotated arguments (-32020).

    `bindings` is `param_headers_of(the tool's inputSchema)`; `headers` are keyed by lower-case name.
    An argument that is sent needs its header; a `=?base64?...?=` value is decoded first (invalid
    Base64 is a mismatch); anything else is literal, surrounding whitespace excluded (RFC 9110).
    """
    arguments = request.params.get("arguments") if request.params is not None else None
    if not bindings or not isinstance(arguments, Mapping):
        return None
    for prop, header in bindings.items():
        expected = _header_form(arguments.get(prop))
        if expected is None:
            continue
        raw = headers.get(header)
        sent = decode_header_value(raw.strip()) if raw is not None else None
        if sent != expected:
            problem = "is missing" if raw is None else "does not match"
            return error_response(
                request.id,
                HEADER_MISMATCH,
                f"{header.title()} header {problem} the argument {prop!r}",
                {"header": header, "argument": prop},
            )
    return None


def finish_stateless_result(
    method: str, result: Mapping[str, Any], server_info: Implementation | None = None
) -> dict[str, Any]:
    """Add what 2026-07-28 requires of every result the handler did not set itself.

    `resultType: "complete"` on every result that has none (an `"input_required"` one is kept);
    `ttlMs: 0` and `cacheScope: "private"` on complete cacheable ones (the conservative defaults the
    SDK uses: a request for input is no answer to cache); the server's identity under `_meta` when given.
    """
    out = dict(result)
    out.setdefault("resultType", "complete")
    if method in CACHEABLE_METHODS and out["resultType"] == "complete":
        out.setdefault("ttlMs", 0)
        out.setdefault("cacheScope", "private")
    if server_info is not None:
        meta = out.get("_meta")
        if meta is None:
            out["_meta"] = {SERVER_INFO_META_KEY: to_wire(server_info)}
        elif isinstance(meta, Mapping) and meta.get(SERVER_INFO_META_KEY) is None:
            out["_meta"] = {**meta, SERVER_INFO_META_KEY: to_wire(server_info)}
    return out
