"""The 2026-07-28 request envelope: each validation rung's exact error, headers, and result finishing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.protocol import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    HEADER_MISMATCH,
    INVALID_PARAMS,
    LOG_LEVEL_META_KEY,
    METHOD_NOT_FOUND,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
    UNSUPPORTED_PROTOCOL_VERSION,
    ClientCapabilities,
    ErrorResponse,
    Implementation,
    Reply,
    Request,
    RootsCapability,
    SessionLifecycle,
    StartSession,
    StatelessRequestContext,
    check_param_headers,
    check_stateless_headers,
    extract_request_context,
    finish_stateless_result,
    has_stateless_envelope,
    param_headers_of,
    to_json,
    unsupported_version_error,
)


def meta(**extra: Any) -> dict[str, Any]:
    return {PROTOCOL_VERSION_META_KEY: "2026-07-28", CLIENT_CAPABILITIES_META_KEY: {}, **extra}


def request(method: str = "tools/list", params_meta: Any = None, **params: Any) -> Request:
    body: dict[str, Any] = dict(params)
    body["_meta"] = meta() if params_meta is None else params_meta
    return Request(9, method, body)


def error_of(result: Any) -> tuple[int, str, Any]:
    assert isinstance(result, ErrorResponse), result
    assert result.id == 9
    return result.error.code, result.error.message, result.error.data


def test_full_envelope_is_extracted() -> None:
    req = request(
        params_meta=meta(
            **{
                CLIENT_CAPABILITIES_META_KEY: {"roots": {"listChanged": True}, "elicitation": {}},
                CLIENT_INFO_META_KEY: {"name": "cli", "version": "3", "title": "CLI"},
                LOG_LEVEL_META_KEY: "warning",
                "progressToken": "p1",
            }
        )
    )
    assert extract_request_context(req) == StatelessRequestContext(
        protocol_version="2026-07-28",
        client_capabilities=ClientCapabilities(roots=RootsCapability(True), elicitation={}),
        client_info=Implementation("cli", "3", title="CLI"),
        log_level="warning",
        progress_token="p1",
    )


def test_minimal_envelope() -> None:
    assert extract_request_context(request()) == StatelessRequestContext("2026-07-28", ClientCapabilities())


@pytest.mark.parametrize("params", [None, {}, {"_meta": 5}, {"_meta": None}])
def test_missing_meta_is_invalid_params(params: Any) -> None:
    code, message, _ = error_of(extract_request_context(Request(9, "tools/list", params)))
    assert code == INVALID_PARAMS
    assert "_meta" in message


def test_missing_keys_are_named() -> None:
    code, message, _ = error_of(extract_request_context(request(params_meta={})))
    assert code == INVALID_PARAMS
    assert PROTOCOL_VERSION_META_KEY in message
    assert CLIENT_CAPABILITIES_META_KEY in message
    code, message, _ = error_of(
        extract_request_context(request(params_meta={PROTOCOL_VERSION_META_KEY: "x"}))
    )
    assert code == INVALID_PARAMS
    assert CLIENT_CAPABILITIES_META_KEY in message
    assert PROTOCOL_VERSION_META_KEY not in message


def test_non_string_version_is_invalid_params_not_32022() -> None:
    code, _, _ = error_of(
        extract_request_context(request(params_meta=meta(**{PROTOCOL_VERSION_META_KEY: 2026})))
    )
    assert code == INVALID_PARAMS


@pytest.mark.parametrize("version", ["2099-01-01", "2025-11-25", ""])
def test_unsupported_version_is_32022_with_supported_list(version: str) -> None:
    req = request(params_meta=meta(**{PROTOCOL_VERSION_META_KEY: version}))
    code, message, data = error_of(extract_request_context(req))
    assert code == UNSUPPORTED_PROTOCOL_VERSION == -32022
    assert message == "Unsupported protocol version"
    # Only what the envelope path serves (what server/discover lists), never the handshake revisions.
    assert data == {"supported": ["2026-07-28"], "requested": version}


def test_advertised_list_is_configurable() -> None:
    req = request(params_meta=meta(**{PROTOCOL_VERSION_META_KEY: "1999"}))
    _, _, data = error_of(extract_request_context(req, advertised=("2026-07-28", "2025-11-25")))
    assert data == {"supported": ["2026-07-28", "2025-11-25"], "requested": "1999"}


@pytest.mark.parametrize("method", ["ping", "logging/setLevel", "initialize", "resources/subscribe"])
def test_methods_removed_in_2026_are_method_not_found(method: str) -> None:
    code, _, _ = error_of(extract_request_context(request(method)))
    assert code == METHOD_NOT_FOUND


def test_discover_exists() -> None:
    assert isinstance(extract_request_context(request("server/discover")), StatelessRequestContext)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (CLIENT_CAPABILITIES_META_KEY, "none"),
        (CLIENT_CAPABILITIES_META_KEY, {"roots": 1}),
        (CLIENT_INFO_META_KEY, {"name": "x"}),
        (CLIENT_INFO_META_KEY, "cli"),
        (LOG_LEVEL_META_KEY, "loud"),
    ],
)
def test_bad_shapes_are_invalid_params_naming_the_key(key: str, value: Any) -> None:
    code, message, _ = error_of(extract_request_context(request(params_meta=meta(**{key: value}))))
    assert code == INVALID_PARAMS
    assert key in message


def test_has_stateless_envelope() -> None:
    assert has_stateless_envelope({"_meta": {PROTOCOL_VERSION_META_KEY: "2026-07-28"}})
    assert not has_stateless_envelope({"_meta": {"progressToken": 1}})
    assert not has_stateless_envelope(None)
    assert not has_stateless_envelope({"_meta": "x"})


def test_unsupported_version_error_wire_form() -> None:
    assert to_json(unsupported_version_error(3, "1.0", ("2026-07-28",))) == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {
            "code": -32022,
            "message": "Unsupported protocol version",
            "data": {"supported": ["2026-07-28"], "requested": "1.0"},
        },
    }


# --- HTTP headers ----------------------------------------------------------------------------------------


def headers(**overrides: str) -> dict[str, str]:
    base = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "add"}
    base.update(overrides)
    return base


def test_matching_headers_pass() -> None:
    req = request("tools/call", name="add")
    assert check_stateless_headers(req, headers()) is None


@pytest.mark.parametrize(
    "hdrs",
    [
        {"mcp-method": "tools/call", "mcp-name": "add"},  # version header missing
        headers(**{"mcp-protocol-version": "2025-11-25"}),
        headers(**{"mcp-method": "tools/list"}),
        headers(**{"mcp-name": "sub"}),
    ],
)
def test_mismatching_headers_are_32020(hdrs: dict[str, str]) -> None:
    code, _, _ = error_of(check_stateless_headers(request("tools/call", name="add"), hdrs))
    assert code == HEADER_MISMATCH == -32020


def test_base64_wrapped_name_header() -> None:
    wrapped = "=?base64?" + base64.b64encode("héllo".encode()).decode() + "?="
    req = request("prompts/get", name="héllo")
    assert check_stateless_headers(req, headers(**{"mcp-method": "prompts/get", "mcp-name": wrapped})) is None
    bad = headers(**{"mcp-method": "prompts/get", "mcp-name": "=?base64?!!!?="})
    assert error_of(check_stateless_headers(req, bad))[0] == HEADER_MISMATCH


def test_resources_read_name_is_the_uri() -> None:
    req = request("resources/read", uri="mem://a")
    hdrs = headers(**{"mcp-method": "resources/read", "mcp-name": "mem://a"})
    assert check_stateless_headers(req, hdrs) is None


# --- results ---------------------------------------------------------------------------------------------


def test_finish_adds_result_type_and_cache_fields() -> None:
    assert finish_stateless_result("tools/call", {"content": []}) == {"content": [], "resultType": "complete"}
    assert finish_stateless_result("tools/list", {"tools": []}) == {
        "tools": [],
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
    }


def test_finish_keeps_what_the_handler_set_and_stamps_server_info() -> None:
    result = finish_stateless_result(
        "resources/read",
        {"contents": [], "ttlMs": 5000, "cacheScope": "public", "_meta": {"a": 1}},
        Implementation("srv", "1"),
    )
    assert result == {
        "contents": [],
        "ttlMs": 5000,
        "cacheScope": "public",
        "resultType": "complete",
        "_meta": {"a": 1, SERVER_INFO_META_KEY: {"name": "srv", "version": "1"}},
    }


def test_finish_does_not_mutate_its_input() -> None:
    original: dict[str, Any] = {"content": []}
    finish_stateless_result("tools/call", original, Implementation("s", "1"))
    assert original == {"content": []}


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=4)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_meta_values = st.dictionaries(
    st.sampled_from(
        [PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY]
    ),
    _json,
)


@settings(max_examples=80, deadline=None)
@given(_meta_values, st.sampled_from(["tools/list", "ping", "server/discover"]))
def test_any_meta_gives_a_context_or_an_error_never_an_exception(
    meta_value: dict[str, Any], method: str
) -> None:
    result = extract_request_context(Request(9, method, {"_meta": meta_value}))
    assert isinstance(result, StatelessRequestContext | ErrorResponse)


@settings(max_examples=80, deadline=None)
@given(_json)
def test_any_initialize_params_never_raise(params: Any) -> None:
    lc = SessionLifecycle()
    action = lc.receive(Request(1, "initialize", params if isinstance(params, dict) else {"x": params}))
    assert isinstance(action, StartSession | Reply)


def test_finish_keeps_an_input_required_result_and_adds_no_cache_fields() -> None:
    asking = {"resultType": "input_required", "inputRequests": {}, "requestState": "s"}
    assert finish_stateless_result("resources/read", asking) == asking


# --- SEP-2243 Mcp-Param headers ----------------------------------------------------------------------

PARAM_SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "priority": {"type": "integer", "x-mcp-header": "Priority"},
        "urgent": {"type": "boolean", "x-mcp-header": "Urgent"},
        "query": {"type": "string"},
    },
}


def test_param_headers_come_from_x_mcp_header_annotations() -> None:
    assert param_headers_of(PARAM_SCHEMA) == {
        "region": "mcp-param-region",
        "priority": "mcp-param-priority",
        "urgent": "mcp-param-urgent",
    }
    assert param_headers_of({"type": "object"}) == {}


@pytest.mark.parametrize(
    ("arguments", "sent", "ok"),
    [
        ({"region": "Hello"}, {"mcp-param-region": "=?base64?SGVsbG8=?="}, True),
        ({"region": "Hello"}, {"mcp-param-region": "  Hello "}, True),  # OWS is not part of the value
        ({"region": "SGVsbG8="}, {"mcp-param-region": "SGVsbG8="}, True),  # no wrapper: literal
        ({"region": "=?base64?SGVsbG8="}, {"mcp-param-region": "=?base64?SGVsbG8="}, True),
        ({"region": "Hello"}, {"mcp-param-region": "=?base64?SGVsbG8?="}, False),  # bad padding
        ({"region": "Hello"}, {"mcp-param-region": "=?base64?SGVs!!!bG8=?="}, False),  # bad characters
        ({"region": "Hello"}, {}, False),  # sent in the body, not in the header
        ({"region": "Hello"}, {"mcp-param-region": "Bye"}, False),
        ({"priority": 3, "urgent": True}, {"mcp-param-priority": "3", "mcp-param-urgent": "true"}, True),
        ({"priority": 3}, {"mcp-param-priority": "4"}, False),
        ({"query": "x"}, {}, True),  # not annotated, not mirrored
        ({"region": None}, {}, True),  # null is not a value to mirror
    ],
)
def test_param_headers_must_mirror_the_arguments(
    arguments: dict[str, Any], sent: dict[str, str], ok: bool
) -> None:
    req = Request(4, "tools/call", {"name": "t", "arguments": arguments})
    answer = check_param_headers(req, sent, param_headers_of(PARAM_SCHEMA))
    if ok:
        assert answer is None
    else:
        assert isinstance(answer, ErrorResponse) and answer.error.code == -32020


def test_is_stateless_request_is_the_one_decision() -> None:
    from mcpvisor.runtime.protocol import Notification, Request, is_stateless_request

    envelope = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "clientCapabilities": {}}}
    # a request says so itself, whatever the transport knows
    assert is_stateless_request(
        Request(1, "tools/list", envelope), session_id="abc", protocol_version="2025-11-25"
    )
    # a bare _meta proves nothing (progressToken lives there in the handshake era)
    assert not is_stateless_request(Request(1, "tools/list", {"_meta": {"progressToken": 1}}))
    # anything else: no session and a stateless revision announced out of band
    assert is_stateless_request(Notification("notifications/cancelled"), protocol_version="2026-07-28")
    assert is_stateless_request(None, protocol_version="2026-07-28")
    assert not is_stateless_request(None, session_id="abc", protocol_version="2026-07-28")
    assert not is_stateless_request(Request(2, "ping"), protocol_version="2025-11-25")
    assert not is_stateless_request(Request(2, "ping"))
