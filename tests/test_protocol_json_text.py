"""What counts as JSON text on the wire, both ways (docs/protocol.md "Strings, numbers and nesting").

In: a lone surrogate, NaN / Infinity, a number too large for a float, nesting deeper than `MAX_DEPTH` or
bytes that are not UTF-8 are a parse error (-32700), never an exception. Out: `encode` never raises; a
lone surrogate becomes U+FFFD, and a response JSON cannot carry becomes a -32603 error for its id.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import (
    INTERNAL_ERROR,
    MAX_DEPTH,
    PARSE_ERROR,
    ErrorResponse,
    Malformed,
    Notification,
    Request,
    Response,
    check_sendable,
    encode,
    error_response,
    parse_message,
    parse_payload,
)


def _parse_error(payload: bytes | str) -> ErrorResponse:
    msg = parse_message(payload)
    assert isinstance(msg, Malformed), msg
    assert msg.reply.error.code == PARSE_ERROR
    return msg.reply


@pytest.mark.parametrize(
    "payload",
    [
        r'{"jsonrpc":"2.0","id":5,"method":"\ud800"}',
        r'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"\udfff"}}',
        r'{"jsonrpc":"2.0","id":5,"method":"ping","params":{"\ud800":1}}',
        r'{"jsonrpc":"2.0","id":5,"method":"ping","params":{"a":["x\ude00y"]}}',
        r'{"jsonrpc":"2.0","id":5,"method":"ping","params":{"a":"\ud83d"}}',  # high half, no low half
    ],
)
def test_a_lone_surrogate_is_a_parse_error_answered_to_the_readable_id(payload: str) -> None:
    reply = _parse_error(payload)
    assert reply.id == 5  # the id itself was fine: the client can match the answer
    assert "surrogate" in reply.error.message


def test_a_lone_surrogate_in_the_id_is_a_parse_error_with_a_null_id() -> None:
    reply = _parse_error(r'{"jsonrpc":"2.0","id":"\ud800","method":"ping"}')
    assert reply.id is None


def test_raw_surrogate_bytes_are_not_utf8() -> None:
    # CESU-8 / WTF-8 bytes for U+D800: Python's json.loads(bytes) would let them through.
    reply = _parse_error(b'{"jsonrpc":"2.0","id":5,"method":"\xed\xa0\x80"}')
    assert reply.id is None


def test_a_valid_surrogate_pair_escape_is_one_character() -> None:
    msg = parse_message(r'{"jsonrpc":"2.0","id":5,"method":"\ud83d\ude00"}')
    assert msg == Request(5, "\U0001f600")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_nan_infinity_and_overflowing_numbers_are_parse_errors(constant: str) -> None:
    _parse_error(f'{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"x":{constant}}}}}')
    batch = parse_payload(
        f'[{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"x":{constant}}}}}]', allow_batch=True
    )
    assert len(batch.items) == 1 and isinstance(batch.items[0], Malformed)
    assert batch.items[0].reply.error.code == PARSE_ERROR


def test_large_finite_numbers_still_parse() -> None:
    msg = parse_message(
        '{"jsonrpc":"2.0","id":5,"method":"ping","params":{"x":1e300,"y":12345678901234567890}}'
    )
    assert msg == Request(5, "ping", {"x": 1e300, "y": 12345678901234567890})


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 990, 5000, 100_000])
def test_deep_nesting_is_a_parse_error_not_a_crash(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    reply = _parse_error(f'{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"a":{nested}}}}}')
    assert "deep" in reply.error.message
    incoming = parse_payload("[" * depth + "]" * depth, allow_batch=True)
    assert isinstance(incoming.items[0], Malformed)
    assert incoming.items[0].reply.error.code == PARSE_ERROR


def test_nesting_up_to_the_limit_parses() -> None:
    depth = MAX_DEPTH - 2  # the message object and params are two levels
    nested = "[" * depth + "]" * depth
    msg = parse_message(f'{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"a":{nested}}}}}')
    assert isinstance(msg, Request)


def test_unbalanced_deep_junk_is_a_parse_error() -> None:
    _parse_error("[" * 100_000)
    _parse_error('{"a":' * 100_000)


def _wire(data: bytes) -> object:
    """What a strict peer reads: UTF-8 that decodes, JSON with no NaN."""
    return json.loads(data.decode("utf-8"), parse_constant=lambda c: pytest.fail(f"{c} on the wire"))


def test_encode_replaces_a_lone_surrogate_with_u_fffd_in_every_kind_of_message() -> None:
    messages = [
        Response(1, {"content": [{"type": "text", "text": "a\ud800b"}]}),
        Notification("notifications/message", {"level": "info", "data": "\udfff"}),
        Request("r\ud800", "elicitation/create", {"message": "?\ud800"}),
        error_response(2, INTERNAL_ERROR, "bad \ud800"),
        Response(3, {"k\ud800": "v"}),
    ]
    for message in messages:
        text = json.dumps(_wire(encode(message)))
        assert "\\ufffd" in text and "\\ud800" not in text and "\\udfff" not in text
    assert _wire(encode(messages)) == [_wire(encode(m)) for m in messages]


def test_encode_joins_a_surrogate_pair_built_by_hand() -> None:
    assert _wire(encode(Response(1, {"t": "\ud83d\ude00"}))) == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"t": "\U0001f600"},
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, object(), b"bytes"])
def test_a_response_json_cannot_carry_becomes_an_internal_error_for_its_id(bad: object) -> None:
    out = _wire(encode(Response(7, {"structuredContent": {"x": bad}})))
    assert isinstance(out, dict)
    assert out["id"] == 7 and out["error"]["code"] == INTERNAL_ERROR
    assert "JSON" in out["error"]["message"]


def test_a_response_nested_too_deep_to_encode_becomes_an_internal_error() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    out = _wire(encode(Response(7, {"x": deep})))
    assert isinstance(out, dict) and out["error"]["code"] == INTERNAL_ERROR


def test_a_notification_json_cannot_carry_still_encodes_to_a_well_formed_message() -> None:
    out = _wire(encode(Notification("notifications/progress", {"progressToken": 1, "progress": math.nan})))
    assert isinstance(out, dict) and out["jsonrpc"] == "2.0" and "id" not in out
    assert out["method"] == "notifications/message"  # says what was dropped, instead of NaN


def test_a_batch_encodes_item_by_item() -> None:
    out = _wire(encode([Response(1, {"x": math.nan}), Response(2, {"ok": "\ud800"})]))
    assert isinstance(out, list)
    assert out[0]["error"]["code"] == INTERNAL_ERROR and out[1]["result"] == {"ok": "\ufffd"}


def test_check_sendable_names_what_json_cannot_carry() -> None:
    check_sendable(Request("r", "elicitation/create", {"message": "fine \ud800"}))  # repaired, not refused
    with pytest.raises(ValueError, match="NaN"):
        check_sendable(Request("r", "sampling/createMessage", {"temperature": math.nan}))
    with pytest.raises(ValueError, match="JSON"):
        check_sendable(Notification("notifications/message", {"data": object()}))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.integers(0, 0x10FFFF)).map(lambda codes: "".join(map(chr, codes))))
def test_encode_of_any_text_is_valid_utf8_json(text: str) -> None:
    out = _wire(encode(Response(1, {"t": text, text: 1})))
    assert isinstance(out, dict) and out["id"] == 1


def test_a_utf8_byte_order_mark_is_ignored_as_before() -> None:
    """RFC 8259 lets a reader ignore a BOM, and ``json.loads(bytes)`` always did: strict UTF-8 keeps that."""
    assert parse_message(b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"method":"ping"}') == Request(1, "ping")


def test_an_unreadable_response_from_the_client_is_not_answered_with_its_id() -> None:
    """A response's id is one the server chose: an error naming it would look like an answer to one of
    the client's own requests. Only a request's id is echoed."""
    reply = _parse_error('{"jsonrpc":"2.0","id":"mcpvisor-0-1","result":{"action":NaN}}')
    assert reply.id is None
    reply = _parse_error(r'{"jsonrpc":"2.0","id":"mcpvisor-0-1","error":{"code":1,"message":"\ud800"}}')
    assert reply.id is None


@pytest.mark.parametrize(
    "payload",
    [
        '{"jsonrpc":"2.0","id":"mcpvisor-0-1","result":5}',
        '{"jsonrpc":"2.0","id":"mcpvisor-0-1","result":{},"error":{"code":1,"message":"x"}}',
        '{"jsonrpc":"2.0","id":"mcpvisor-0-1","error":{"code":"x","message":"x"}}',
        '{"jsonrpc":"1.0","id":"mcpvisor-0-1","result":{}}',
    ],
)
def test_a_malformed_client_response_is_not_answered_with_its_id(payload: str) -> None:
    """-32600 for a bad response carries no id either: that id is the server's own request's."""
    msg = parse_message(payload)
    assert isinstance(msg, Malformed) and msg.reply.error.code == -32600
    assert msg.reply.id is None
