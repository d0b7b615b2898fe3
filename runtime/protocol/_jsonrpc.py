"""JSON-RPC 2.0 framing, sans-IO: bytes in, frozen message values out, and back.

Nothing here raises at a transport. A payload that is not JSON, or not a JSON-RPC object, comes back as a
`Malformed` value holding the `ErrorResponse` to send, so a driver can never drop a connection because a
peer sent junk (docs/design.md, "Protocol layer").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import attrs

from ._json_text import NotJsonText, dumps, has_lone_surrogate, loads, why_not_json

logger = logging.getLogger("mcpvisor.runtime.protocol")

JSONRPC_VERSION: Final = "2.0"

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
# MCP's spec-defined codes (2026-07-28 allocates them from -32020 upwards).
HEADER_MISMATCH: Final = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY: Final = -32021
UNSUPPORTED_PROTOCOL_VERSION: Final = -32022

RequestId: TypeAlias = int | str
"""A request id: MCP forbids null ids on requests, and JSON-RPC discourages fractional numbers."""


@attrs.frozen
class ErrorObject:
    """The `error` member of an error response; `data` is omitted from the wire when None."""

    code: int
    message: str
    data: Any = None


@attrs.frozen
class Request:
    """A call that expects exactly one response carrying the same id."""

    id: RequestId
    method: str
    params: Mapping[str, Any] | None = None


@attrs.frozen
class Notification:
    """A one-way message; the receiver never answers it, not even with an error."""

    method: str
    params: Mapping[str, Any] | None = None


@attrs.frozen
class Response:
    """A successful answer to the request with the same id."""

    id: RequestId
    result: Mapping[str, Any]


@attrs.frozen
class ErrorResponse:
    """A failed answer; `id` is None only when the request's id could not be read (parse errors)."""

    id: RequestId | None
    error: ErrorObject


Message: TypeAlias = Request | Notification | Response | ErrorResponse


@attrs.frozen
class Malformed:
    """Something arrived that is not a message; `reply` is the error response to send back."""

    reply: ErrorResponse


@attrs.frozen
class Incoming:
    """One decoded payload: a single item, or the items of a batch (`batch` says which)."""

    items: tuple[Message | Malformed, ...]
    batch: bool = False


class JsonRpcError(Exception):
    """Raised by handlers to answer a request with a specific JSON-RPC error instead of a result.

    The runtime catches it and turns it into an `ErrorResponse` via `error_response`; anything else a
    handler raises becomes -32603, so handler internals never reach the wire by accident.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> ErrorObject:
        return ErrorObject(self.code, self.message, self.data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r}, data={self.data!r})"


def error_response(request_id: RequestId | None, code: int, message: str, data: Any = None) -> ErrorResponse:
    """Build the error response for `request_id` (the common case when answering a request)."""
    return ErrorResponse(request_id, ErrorObject(code, message, data))


def error_for_exception(request_id: RequestId | None, exc: BaseException) -> ErrorResponse:
    """The error response for an exception a handler raised.

    A `JsonRpcError` keeps its code, message and data; anything else is -32603 with a generic message, so
    a handler's internals (paths, values in the exception text) never reach the peer. Log `exc` yourself.
    """
    if isinstance(exc, JsonRpcError):
        return ErrorResponse(request_id, exc.to_error())
    return error_response(request_id, INTERNAL_ERROR, "Internal error")


def _malformed(request_id: RequestId | None, code: int, message: str) -> Malformed:
    return Malformed(error_response(request_id, code, message))


def _is_id(value: object) -> bool:
    # bool is an int subclass, and JSON `true` is not a request id.
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def from_json(obj: object) -> Message | Malformed:
    """Classify one decoded JSON value as a JSON-RPC message, or say why it is not one (-32600)."""
    if not isinstance(obj, dict):
        return _malformed(None, INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be an object")
    raw_id = obj.get("id")
    reply_id: RequestId | None = raw_id if _is_id(raw_id) else None
    # An error about a malformed *response* names no id: that id is the server's own request's, and
    # naming it would read as the answer to a request of the client's.
    error_id = reply_id if "method" in obj else None
    if obj.get("jsonrpc") != JSONRPC_VERSION:
        return _malformed(error_id, INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
    has_id = "id" in obj
    if "method" in obj:
        method = obj["method"]
        if not isinstance(method, str):
            return _malformed(reply_id, INVALID_REQUEST, 'Invalid Request: "method" must be a string')
        params = obj.get("params")
        if params is not None and not isinstance(params, dict):
            return _malformed(reply_id, INVALID_REQUEST, 'Invalid Request: "params" must be an object')
        if not has_id:
            return Notification(method, params)
        if reply_id is None:
            return _malformed(None, INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer')
        return Request(reply_id, method, params)
    if "result" in obj:
        if "error" in obj:
            return _malformed(None, INVALID_REQUEST, "Invalid Request: both result and error")
        result = obj["result"]
        if reply_id is None or not isinstance(result, dict):
            return _malformed(None, INVALID_REQUEST, "Invalid Request: malformed response")
        return Response(reply_id, result)
    if "error" in obj:
        error = obj["error"]
        if (
            not isinstance(error, dict)
            or not isinstance(error.get("code"), int)
            or isinstance(error.get("code"), bool)
            or not isinstance(error.get("message"), str)
            or (raw_id is not None and reply_id is None)
        ):
            return _malformed(None, INVALID_REQUEST, "Invalid Request: malformed error response")
        return ErrorResponse(reply_id, ErrorObject(error["code"], error["message"], error.get("data")))
    return _malformed(
        reply_id, INVALID_REQUEST, "Invalid Request: neither a request, notification nor response"
    )


def _unreadable(exc: ValueError) -> Malformed:
    """-32700 for a payload that is not JSON text; the id is answered when the message read as one."""
    if not isinstance(exc, NotJsonText):
        return _malformed(None, PARSE_ERROR, "Parse error")
    obj = exc.obj
    # Only a request's id: a response's id is one the server chose, and an error naming it would read
    # as the answer to a request of the client's own.
    raw_id = obj.get("id") if isinstance(obj, dict) and "method" in obj else None
    readable = _is_id(raw_id) and not (isinstance(raw_id, str) and has_lone_surrogate(raw_id))
    return _malformed(raw_id if readable else None, PARSE_ERROR, f"Parse error: {exc.reason}")


def parse_message(data: bytes | str) -> Message | Malformed:
    """Parse one JSON-RPC message (no batches): -32700 for bad JSON, -32600 for a bad object."""
    try:
        obj = loads(data)
    except ValueError as exc:
        return _unreadable(exc)
    if isinstance(obj, list):
        return _malformed(None, INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported")
    return from_json(obj)


def parse_payload(data: bytes | str, *, allow_batch: bool) -> Incoming:
    """Parse a payload that may be a batch.

    Batches exist only in protocol 2025-03-26 (see `allows_batches`); when `allow_batch` is false an array
    is one -32600. An empty batch is one -32600 too (JSON-RPC 2.0 section 6); a batch's bad items are
    answered one by one, like any JSON-RPC server. What is not JSON text (see `_json_text`) is one -32700.
    """
    try:
        obj = loads(data)
    except ValueError as exc:
        return Incoming((_unreadable(exc),))
    if not isinstance(obj, list):
        return Incoming((from_json(obj),))
    if not allow_batch:
        return Incoming(
            (_malformed(None, INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported"),)
        )
    if not obj:
        return Incoming((_malformed(None, INVALID_REQUEST, "Invalid Request: empty batch"),))
    return Incoming(tuple(from_json(item) for item in obj), batch=True)


def to_json(message: Message) -> dict[str, Any]:
    """The JSON-ready dict for one message (the wire form, `jsonrpc` member included)."""
    if isinstance(message, Request):
        out: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": message.id, "method": message.method}
        if message.params is not None:
            out["params"] = dict(message.params)
        return out
    if isinstance(message, Notification):
        out = {"jsonrpc": JSONRPC_VERSION, "method": message.method}
        if message.params is not None:
            out["params"] = dict(message.params)
        return out
    if isinstance(message, Response):
        return {"jsonrpc": JSONRPC_VERSION, "id": message.id, "result": dict(message.result)}
    error: dict[str, Any] = {"code": message.error.code, "message": message.error.message}
    if message.error.data is not None:
        error["data"] = message.error.data
    return {"jsonrpc": JSONRPC_VERSION, "id": message.id, "error": error}


def _stand_in(message: Message, reason: str) -> Message:
    """What is sent instead of a message JSON cannot carry: an answer is still an answer (-32603 for the
    same id, so the peer's request ends), anything else a log notification saying what was dropped."""
    if isinstance(message, Response | ErrorResponse):
        return error_response(
            message.id,
            INTERNAL_ERROR,
            f"Internal error: the server's answer holds {reason}; the server log names the request",
        )
    return Notification(
        "notifications/message",
        {
            "level": "error",
            "logger": "mcpvisor",
            "data": f"a {message.method} message from the server held {reason} and was not sent",
        },
    )


def encode(message: Message | Sequence[Message]) -> bytes:
    """Compact UTF-8 JSON for one message or a batch (a list); no newline: framing is the driver's.

    Never raises: this is the last step before bytes reach a peer, and a transport must not die of what
    a handler returned. Lone surrogates become U+FFFD; a message JSON cannot carry at all (NaN, infinity,
    a non-JSON value, nesting too deep) is replaced by `_stand_in` and logged. Handlers' own messages are
    checked earlier, where the handler can be told (`check_sendable`).
    """
    if isinstance(message, Sequence):
        return b"[" + b",".join(encode(item) for item in message) + b"]"
    try:
        return dumps(to_json(message))
    except (ValueError, TypeError, RecursionError) as exc:
        reason = why_not_json(exc)
        logger.error("not sent as JSON, replaced: %s holding %s", _describe(message), reason)  # noqa: TRY400 (a traceback would show only json internals)
        stand_in = _stand_in(message, reason)
        try:
            return dumps(to_json(stand_in))
        except (ValueError, TypeError, RecursionError):  # an id that is no JSON value: answer without it
            assert isinstance(stand_in, ErrorResponse)
            return dumps(to_json(ErrorResponse(None, stand_in.error)))


def check_sendable(message: Message) -> None:
    """Raise ValueError, saying why, when `message` has no JSON form (lone surrogates do not count:
    `encode` repairs them). For handlers' notifications and requests to the client, so the handler
    learns of it at once instead of waiting for an answer to a request that was never sent."""
    try:
        dumps(to_json(message))
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(
            f"{_describe(message)} cannot be sent: it holds {why_not_json(exc)}; "
            "send finite numbers, strings, lists and dicts only"
        ) from exc


def _describe(message: Message) -> str:
    if isinstance(message, Request | Notification):
        return f"the {message.method!r} {type(message).__name__.lower()}"
    return f"the answer to request {message.id!r}"
