"""JSON-RPC framing: every message kind parses and serializes, and every kind of junk gets its error code."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorObject,
    ErrorResponse,
    JsonRpcError,
    Malformed,
    Notification,
    Request,
    Response,
    encode,
    error_for_exception,
    error_response,
    from_json,
    parse_message,
    parse_payload,
    to_json,
)


def test_request_parses_to_a_frozen_value() -> None:
    msg = parse_message(b'{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"c"}}')
    assert msg == Request(7, "tools/list", {"cursor": "c"})


def test_string_ids_and_missing_params() -> None:
    assert parse_message('{"jsonrpc":"2.0","id":"abc","method":"ping"}') == Request("abc", "ping", None)


def test_notification_has_no_id() -> None:
    msg = parse_message(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert msg == Notification("notifications/initialized", None)


def test_response_and_error_response() -> None:
    assert parse_message(b'{"jsonrpc":"2.0","id":1,"result":{}}') == Response(1, {})
    msg = parse_message(b'{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"no","data":[1]}}')
    assert msg == ErrorResponse(1, ErrorObject(-1, "no", [1]))


def test_error_response_with_null_id_is_a_message() -> None:
    msg = parse_message(b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}')
    assert msg == ErrorResponse(None, ErrorObject(-32700, "Parse error"))


@pytest.mark.parametrize("payload", [b"{", b"not json", b'{"a":', b"\xff\xfe", ""])
def test_bad_json_is_parse_error_with_null_id(payload: bytes | str) -> None:
    msg = parse_message(payload)
    assert isinstance(msg, Malformed)
    assert msg.reply.id is None
    assert msg.reply.error.code == PARSE_ERROR == -32700


@pytest.mark.parametrize(
    ("payload", "reply_id"),
    [
        ('"a string"', None),
        ("42", None),
        ('{"id":1,"method":"x"}', 1),  # no jsonrpc member
        ('{"jsonrpc":"1.0","id":1,"method":"x"}', 1),
        ('{"jsonrpc":"2.0","id":1,"method":5}', 1),
        ('{"jsonrpc":"2.0","id":1,"method":"x","params":[1,2]}', 1),
        ('{"jsonrpc":"2.0","id":null,"method":"x"}', None),  # MCP: request ids are never null
        ('{"jsonrpc":"2.0","id":1.5,"method":"x"}', None),
        ('{"jsonrpc":"2.0","id":true,"method":"x"}', None),
        # A client's malformed response: its id is the server's own request's, so the error names none
        # (id 1 would read as the answer to the client's request 1).
        ('{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}', None),
        ('{"jsonrpc":"2.0","id":1,"result":[]}', None),
        ('{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}', None),
        ('{"jsonrpc":"2.0","id":1,"error":{"code":true,"message":"m"}}', None),
        ('{"jsonrpc":"2.0","id":1}', 1),
    ],
)
def test_invalid_objects_are_invalid_request(payload: str, reply_id: object) -> None:
    msg = parse_message(payload)
    assert isinstance(msg, Malformed)
    assert msg.reply.error.code == INVALID_REQUEST == -32600
    assert msg.reply.id == reply_id


def test_batches_refused_by_parse_message() -> None:
    msg = parse_message(b'[{"jsonrpc":"2.0","method":"a"}]')
    assert isinstance(msg, Malformed)
    assert msg.reply.error.code == INVALID_REQUEST


def test_parse_payload_batch_when_allowed() -> None:
    payload = b'[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"},7]'
    incoming = parse_payload(payload, allow_batch=True)
    assert incoming.batch is True
    assert incoming.items[:2] == (Request(1, "a"), Notification("b"))
    bad = incoming.items[2]
    assert isinstance(bad, Malformed)
    assert bad.reply.error.code == INVALID_REQUEST


def test_parse_payload_batch_refused_when_not_allowed() -> None:
    incoming = parse_payload(b'[{"jsonrpc":"2.0","id":1,"method":"a"}]', allow_batch=False)
    assert incoming.batch is False
    (only,) = incoming.items
    assert isinstance(only, Malformed)
    assert only.reply.error.code == INVALID_REQUEST
    assert "batch" in only.reply.error.message


def test_parse_payload_empty_batch_and_junk() -> None:
    (empty,) = parse_payload(b"[]", allow_batch=True).items
    assert isinstance(empty, Malformed)
    assert empty.reply.error.code == INVALID_REQUEST
    (junk,) = parse_payload(b"[", allow_batch=True).items
    assert isinstance(junk, Malformed)
    assert junk.reply.error.code == PARSE_ERROR


def test_parse_payload_single() -> None:
    incoming = parse_payload(b'{"jsonrpc":"2.0","method":"a"}', allow_batch=True)
    assert incoming.items == (Notification("a"),)
    assert incoming.batch is False


def test_to_json_wire_forms() -> None:
    assert to_json(Request(1, "m", {"a": 1})) == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "m",
        "params": {"a": 1},
    }
    assert to_json(Request("x", "m")) == {"jsonrpc": "2.0", "id": "x", "method": "m"}
    assert to_json(Notification("n")) == {"jsonrpc": "2.0", "method": "n"}
    assert to_json(Notification("n", {})) == {"jsonrpc": "2.0", "method": "n", "params": {}}
    assert to_json(Response(2, {"x": []})) == {"jsonrpc": "2.0", "id": 2, "result": {"x": []}}
    assert to_json(error_response(None, -32700, "Parse error")) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error"},
    }
    assert to_json(error_response(3, -32602, "bad", {"field": "x"}))["error"] == {
        "code": -32602,
        "message": "bad",
        "data": {"field": "x"},
    }


def test_encode_single_and_batch() -> None:
    assert encode(Response(1, {"é": 1})) == '{"jsonrpc":"2.0","id":1,"result":{"é":1}}'.encode()
    batch = encode([Response(1, {}), Response(2, {})])
    assert json.loads(batch) == [to_json(Response(1, {})), to_json(Response(2, {}))]


def test_json_rpc_error_carries_code_message_data() -> None:
    exc = JsonRpcError(-32001, "too slow", {"retry": 1})
    assert str(exc) == "too slow"
    assert exc.to_error() == ErrorObject(-32001, "too slow", {"retry": 1})
    assert "code=-32001" in repr(exc)


def test_from_json_accepts_decoded_values() -> None:
    assert from_json({"jsonrpc": "2.0", "id": 1, "method": "x"}) == Request(1, "x")
    assert isinstance(from_json([]), Malformed)


_ids = st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=8))
_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=5))
_params = st.one_of(st.none(), st.dictionaries(st.text(max_size=5), _json_scalars, max_size=3))
_messages = st.one_of(
    st.builds(Request, _ids, st.text(min_size=1, max_size=10), _params),
    st.builds(Notification, st.text(min_size=1, max_size=10), _params),
    st.builds(Response, _ids, st.dictionaries(st.text(max_size=5), _json_scalars, max_size=3)),
    st.builds(
        ErrorResponse,
        st.one_of(st.none(), _ids),
        st.builds(ErrorObject, st.integers(-33000, 0), st.text(max_size=10), _json_scalars),
    ),
)


@settings(max_examples=60, deadline=None)
@given(_messages)
def test_encode_parse_round_trip(message: object) -> None:
    assert parse_message(encode(message)) == message  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=40))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse_message(data)
    parse_payload(data, allow_batch=True)


def test_error_for_exception_keeps_json_rpc_errors() -> None:
    reply = error_for_exception(4, JsonRpcError(-32602, "bad", {"field": "x"}))
    assert reply == ErrorResponse(4, ErrorObject(-32602, "bad", {"field": "x"}))


def test_error_for_exception_hides_other_exceptions_behind_32603() -> None:
    reply = error_for_exception(5, KeyError("/secret/path"))
    assert reply.error.code == INTERNAL_ERROR == -32603
    assert reply.error.message == "Internal error"
    assert reply.error.data is None
    assert "secret" not in encode(reply).decode()
