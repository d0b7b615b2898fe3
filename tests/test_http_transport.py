"""Streamable HTTP transport, driven in-process through ASGI against the scripted fake port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from _asgi_client import open_request, parse_sse, request, sse_messages
from _fake_port import FakePort, fake_port
from _http_messages import BOTH, INIT
from mcpvisor.runtime.protocol import Notification, Request, Response
from mcpvisor.runtime.transports.http import McpHttpApp, mcp_asgi_app

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
STATELESS_HEADERS = {
    **BOTH,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "add",
}


def call(rid: int | str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        out["params"] = params
    return out


@pytest.fixture
async def port() -> AsyncIterator[FakePort]:
    async with fake_port() as p:
        yield p


@pytest.fixture
def app(port: FakePort) -> McpHttpApp:
    return mcp_asgi_app(port)


async def init_session(app: McpHttpApp) -> str:
    status, headers, _ = await request(app, "POST", headers={"accept": "application/json"}, body=INIT)
    assert status == 200
    return headers["mcp-session-id"]


def session_headers(session_id: str, **extra: str) -> dict[str, str]:
    return {**BOTH, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25", **extra}


# -- handshake era: initialize, session routing -------------------------------------------------------


async def test_initialize_creates_a_session_and_returns_its_id(app: McpHttpApp, port: FakePort) -> None:
    status, headers, body = await request(app, "POST", headers={"accept": "application/json"}, body=INIT)
    assert status == 200 and headers["content-type"] == "application/json"
    session_id = headers["mcp-session-id"]
    assert port.has_session(session_id)
    assert all(0x21 <= ord(c) <= 0x7E for c in session_id)
    assert json.loads(body)["result"]["protocolVersion"] == "2025-11-25"


async def test_initialize_over_sse_primes_then_answers(app: McpHttpApp) -> None:
    status, headers, body = await request(app, "POST", headers=BOTH, body=INIT)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert "mcp-session-id" in headers
    events = parse_sse(body)
    assert events[0]["data"] == "" and events[0]["id"] and events[0]["retry"] == "1000"
    assert json.loads(events[1]["data"])["id"] == 1
    assert events[0]["id"] != events[1]["id"]


async def test_refused_initialize_leaves_no_session(app: McpHttpApp, port: FakePort) -> None:
    bad = {"jsonrpc": "2.0", "id": 1, "method": "initialize"}
    status, headers, body = await request(app, "POST", headers={"accept": "application/json"}, body=bad)
    assert status == 200 and "mcp-session-id" not in headers
    assert json.loads(body)["error"]["code"] == -32602
    assert port.sessions == {} and len(port.closed) == 1


async def test_requests_need_a_known_session(app: McpHttpApp, port: FakePort) -> None:
    status, _, body = await request(app, "POST", headers=BOTH, body=call(2, "echo"))
    assert status == 400 and json.loads(body)["error"]["code"] == -32600
    status, _, _ = await request(app, "POST", headers=session_headers("nope"), body=call(2, "echo"))
    assert status == 404
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    status, _, _ = await request(app, "POST", headers=session_headers("nope"), body=note)
    assert status == 404
    assert port.sessions == {}


async def test_notifications_and_responses_get_202_with_no_body(app: McpHttpApp, port: FakePort) -> None:
    sid = await init_session(app)
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    status, _, body = await request(app, "POST", headers=session_headers(sid), body=note)
    assert (status, body) == (202, b"")
    answer = {"jsonrpc": "2.0", "id": "x", "result": {}}
    status, _, body = await request(app, "POST", headers=session_headers(sid), body=answer)
    assert (status, body) == (202, b"")
    assert port.sessions[sid].received[-2:] == [Notification("notifications/initialized"), Response("x", {})]


async def test_sse_stream_carries_related_messages_then_the_response(app: McpHttpApp) -> None:
    sid = await init_session(app)
    status, headers, body = await request(app, "POST", headers=session_headers(sid), body=call(7, "progress"))
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = parse_sse(body)
    assert events[0]["data"] == "" and "retry" in events[0]
    messages = [json.loads(e["data"]) for e in events[1:]]
    assert [m.get("method") for m in messages[:3]] == ["notifications/progress"] * 3
    assert messages[3] == {"jsonrpc": "2.0", "id": 7, "result": {"done": True}}
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids) == 5


async def test_json_response_mode_and_json_only_clients_get_one_body(port: FakePort) -> None:
    for app, accept in (
        (mcp_asgi_app(port, json_response=True), BOTH["accept"]),
        (mcp_asgi_app(port), "application/json"),
    ):
        sid = await init_session(app)
        status, headers, body = await request(
            app, "POST", headers=session_headers(sid, accept=accept), body=call(3, "progress")
        )
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"jsonrpc": "2.0", "id": 3, "result": {"done": True}}


async def test_accept_and_content_type_are_checked(app: McpHttpApp) -> None:
    status, _, _ = await request(app, "POST", headers={"accept": "text/html"}, body=INIT)
    assert status == 406
    status, _, _ = await request(
        app, "POST", headers={**BOTH, "content-type": "text/plain"}, body=json.dumps(INIT).encode()
    )
    assert status == 415
    sid = await init_session(app)
    status, _, _ = await request(app, "GET", headers={"accept": "application/json", "mcp-session-id": sid})
    assert status == 406
    sse_only = mcp_asgi_app(app.port, json_response=True)
    status, _, _ = await request(sse_only, "POST", headers={"accept": "text/event-stream"}, body=INIT)
    assert status == 406


async def test_malformed_bodies_get_400_with_a_jsonrpc_error(app: McpHttpApp) -> None:
    hdrs = {**BOTH, "content-type": "application/json"}
    status, _, body = await request(app, "POST", headers=hdrs, body=b"{not json")
    assert status == 400 and json.loads(body) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error"},
    }
    status, _, body = await request(app, "POST", headers=hdrs, body=b'{"jsonrpc": "2.0", "id": 4}')
    assert status == 400 and json.loads(body)["error"]["code"] == -32600
    status, _, body = await request(app, "POST", headers=hdrs, body=b"[]")
    assert status == 400 and json.loads(body)["error"]["code"] == -32600


async def test_busy_session_is_429_with_retry_after(app: McpHttpApp, port: FakePort) -> None:
    sid = await init_session(app)
    port.busy = True
    status, headers, body = await request(app, "POST", headers=session_headers(sid), body=call(2, "echo"))
    assert status == 429 and headers["retry-after"] == "2"
    assert "error" in json.loads(body)


async def test_protocol_version_header_must_be_supported_when_present(app: McpHttpApp) -> None:
    sid = await init_session(app)
    hdrs = session_headers(sid, **{"mcp-protocol-version": "1999-01-01"})
    status, _, _ = await request(app, "POST", headers=hdrs, body=call(2, "echo"))
    assert status == 400
    hdrs = {**BOTH, "mcp-session-id": sid}  # absent: assume 2025-03-26, served
    status, _, body = await request(
        app, "POST", headers={**hdrs, "accept": "application/json"}, body=call(2, "echo", {"a": 1})
    )
    assert status == 200 and json.loads(body)["result"] == {"a": 1}


async def test_unknown_path_and_method(app: McpHttpApp) -> None:
    status, _, _ = await request(app, "POST", "/other", headers=BOTH, body=INIT)
    assert status == 404
    status, headers, _ = await request(app, "PUT", headers=BOTH)
    assert status == 405 and "POST" in headers["allow"]


# -- DNS rebinding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": "http://evil.example.com"}, 403),
        ({"origin": "null"}, 403),
        ({"origin": "http://localhost:5173"}, 200),
        ({"origin": "https://127.0.0.1"}, 200),
        ({"origin": "http://[::1]:9000"}, 200),
        ({"host": "evil.example.com"}, 403),
        ({"host": "evil.example.com:8000"}, 403),
        ({"host": "localhost:8000"}, 200),
        ({"host": "[::1]:8000"}, 200),
    ],
)
async def test_default_allow_lists_admit_loopback_only(
    app: McpHttpApp, headers: dict[str, str], status: int
) -> None:
    got, _, body = await request(app, "POST", headers={"accept": "application/json", **headers}, body=INIT)
    assert got == status
    if status == 403:
        assert json.loads(body)["id"] is None


async def test_custom_allow_lists(port: FakePort) -> None:
    app = mcp_asgi_app(
        port, allowed_hosts=["mcp.example.com"], allowed_origins=["https://app.example.com:8443"]
    )
    ok = {"accept": "application/json", "host": "mcp.example.com", "origin": "https://app.example.com:8443"}
    assert (await request(app, "POST", headers=ok, body=INIT))[0] == 200
    assert (await request(app, "POST", headers={**ok, "host": "localhost"}, body=INIT))[0] == 403
    assert (await request(app, "POST", headers={**ok, "origin": "https://app.example.com"}, body=INIT))[
        0
    ] == 403
    open_app = mcp_asgi_app(port, allowed_hosts=["*"], allowed_origins=["*"])
    anything = {"accept": "application/json", "host": "x.test", "origin": "http://y.test"}
    assert (await request(open_app, "POST", headers=anything, body=INIT))[0] == 200
    with pytest.raises(TypeError):
        mcp_asgi_app(port, allowed_hosts="localhost")


# -- stateless era ------------------------------------------------------------------------------------


def stateless_call(rid: int, name: str = "add") -> dict[str, Any]:
    return call(rid, "tools/call", {"name": name, "arguments": {}, "_meta": META})


async def test_stateless_request_is_submitted_without_a_session(app: McpHttpApp, port: FakePort) -> None:
    hdrs = {**STATELESS_HEADERS, "mcp-session-id": "stale-id", "accept": "application/json"}
    status, headers, body = await request(app, "POST", headers=hdrs, body=stateless_call(5))
    assert status == 200 and "mcp-session-id" not in headers
    assert json.loads(body)["result"] == {"stateless": True, "method": "tools/call"}
    assert port.stateless_received == [Request(5, "tools/call", stateless_call(5)["params"])]
    assert port.sessions == {}


async def test_stateless_final_answer_goes_out_as_one_json_body(app: McpHttpApp) -> None:
    # Nothing is committed before the first reply, so an immediate answer is plain JSON with its status.
    status, headers, body = await request(app, "POST", headers=STATELESS_HEADERS, body=stateless_call(5))
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body)["id"] == 5


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"mcp-method": "tools/list"}, -32020),
        ({"mcp-name": "sub"}, -32020),
        ({"mcp-protocol-version": "2025-11-25"}, -32020),
    ],
)
async def test_stateless_header_mismatch_is_400(
    app: McpHttpApp, port: FakePort, override: dict[str, str], code: int
) -> None:
    hdrs = {**STATELESS_HEADERS, **override}
    status, _, body = await request(app, "POST", headers=hdrs, body=stateless_call(6))
    assert status == 400
    reply = json.loads(body)
    assert reply["error"]["code"] == code and reply["id"] == 6
    assert port.stateless_received == []


async def test_stateless_missing_headers_and_unserved_version(app: McpHttpApp, port: FakePort) -> None:
    missing = {k: v for k, v in STATELESS_HEADERS.items() if k != "mcp-name"}
    status, _, body = await request(app, "POST", headers=missing, body=stateless_call(6))
    assert status == 400 and json.loads(body)["error"]["code"] == -32020
    assert port.stateless_received == []
    meta = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    body_future = call(7, "tools/call", {"name": "add", "_meta": meta})
    hdrs = {**STATELESS_HEADERS, "mcp-protocol-version": "2099-01-01"}
    status, headers, body = await request(app, "POST", headers=hdrs, body=body_future)
    assert status == 400 and headers["content-type"] == "application/json"
    reply = json.loads(body)
    assert reply["id"] == 7 and reply["error"]["code"] == -32022
    assert reply["error"]["data"]["requested"] == "2099-01-01"


@pytest.mark.parametrize(
    ("method", "params", "status", "code"),
    [
        ("ping", {}, 404, -32601),
        ("initialize", {"protocolVersion": "2026-07-28"}, 404, -32601),
        ("tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}, 400, -32602),
    ],
)
async def test_stateless_errors_carry_their_http_status(
    app: McpHttpApp, method: str, params: dict[str, Any], status: int, code: int
) -> None:
    if "_meta" not in params:
        params = {**params, "_meta": META}
    hdrs = {**STATELESS_HEADERS, "mcp-method": method}
    got, headers, body = await request(app, "POST", headers=hdrs, body=call(8, method, params))
    reply = json.loads(body)
    assert (got, reply["error"]["code"], reply["id"]) == (status, code, 8)
    assert "mcp-session-id" not in headers


async def test_stateless_client_without_envelope_is_400_invalid_params(
    app: McpHttpApp, port: FakePort
) -> None:
    hdrs = {**STATELESS_HEADERS, "mcp-method": "tools/list"}
    status, _, body = await request(app, "POST", headers=hdrs, body=call(3, "tools/list"))
    assert status == 400 and json.loads(body)["error"]["code"] == -32602
    assert port.stateless_received == []


async def test_stateless_request_that_streams_gets_sse_without_ids(app: McpHttpApp) -> None:
    hdrs = {**STATELESS_HEADERS, "mcp-name": "progress"}
    status, headers, body = await request(app, "POST", headers=hdrs, body=stateless_call(4, "progress"))
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = parse_sse(body)
    assert [json.loads(e["data"]).get("method") for e in events] == ["notifications/progress", None]
    assert all("id" not in e for e in events)
    json_only = {**hdrs, "accept": "application/json"}
    status, headers, body = await request(app, "POST", headers=json_only, body=stateless_call(4, "progress"))
    assert status == 200 and json.loads(body)["result"]["stateless"] is True


async def test_get_and_delete_are_405_for_stateless_clients(app: McpHttpApp) -> None:
    hdrs = {"accept": "text/event-stream", "mcp-protocol-version": "2026-07-28"}
    status, headers, _ = await request(app, "GET", headers=hdrs)
    assert status == 405 and headers["allow"] == "POST"
    status, _, _ = await request(app, "DELETE", headers=hdrs)
    assert status == 405


# -- DELETE, GET ----------------------------------------------------------------------------------


async def test_delete_ends_the_session(app: McpHttpApp, port: FakePort) -> None:
    sid = await init_session(app)
    status, _, _ = await request(app, "DELETE", headers={"mcp-session-id": sid})
    assert status == 200 and port.closed == [sid]
    status, _, _ = await request(app, "POST", headers=session_headers(sid), body=call(2, "echo"))
    assert status == 404
    assert (await request(app, "DELETE", headers={"mcp-session-id": sid}))[0] == 404
    assert (await request(app, "DELETE", headers={}))[0] == 400
    assert (await request(app, "GET", headers={"accept": "text/event-stream"}))[0] == 400


async def test_get_streams_standalone_messages_and_a_new_get_replaces_it(app: McpHttpApp) -> None:
    sid = await init_session(app)
    get_headers = {"accept": "text/event-stream", "mcp-session-id": sid}
    async with open_request(app, "GET", headers=get_headers) as first:
        assert first.status == 200 and first.headers["content-type"] == "text/event-stream"
        priming = await first.next_event()
        assert priming is not None and priming["data"] == "" and priming["id"]
        await request(app, "POST", headers=session_headers(sid), body=call(2, "notify", {"n": 1}))
        event = await first.next_event()
        assert event is not None and json.loads(event["data"])["params"] == {"n": 1}
        async with open_request(app, "GET", headers=get_headers) as second:
            with trio.fail_after(2):
                assert await first.next_event() is None  # replaced: the old stream ends
            await second.next_event()
            await request(app, "POST", headers=session_headers(sid), body=call(3, "notify", {"n": 2}))
            event = await second.next_event()
            assert event is not None and json.loads(event["data"])["params"] == {"n": 2}
            assert event["id"] != priming["id"]


async def test_server_to_client_request_round_trip_over_sse(app: McpHttpApp) -> None:
    sid = await init_session(app)
    async with open_request(app, "POST", headers=session_headers(sid), body=call(9, "ask")) as live:
        await live.next_event()  # priming
        event = await live.next_event()
        assert event is not None
        asked = json.loads(event["data"])
        assert asked["method"] == "elicitation/create"
        answer = {"jsonrpc": "2.0", "id": asked["id"], "result": {"action": "accept"}}
        status, _, _ = await request(app, "POST", headers=session_headers(sid), body=answer)
        assert status == 202
        final = await live.next_event()
        assert final is not None and json.loads(final["data"])["result"] == {"answer": {"action": "accept"}}
        assert await live.next_event() is None


async def test_json_mode_refuses_server_requests_instead_of_hanging(port: FakePort) -> None:
    app = mcp_asgi_app(port, json_response=True)
    sid = await init_session(app)
    with trio.fail_after(2):
        status, _, body = await request(app, "POST", headers=session_headers(sid), body=call(9, "ask"))
    assert status == 200 and json.loads(body)["result"]["answer"]["error"] == -32603


async def test_replies_closed_without_an_answer_become_internal_error(app: McpHttpApp) -> None:
    sid = await init_session(app)
    _, _, body = await request(app, "POST", headers=session_headers(sid), body=call(4, "vanish"))
    assert sse_messages(body) == [
        {"jsonrpc": "2.0", "id": 4, "error": {"code": -32603, "message": "Internal error"}}
    ]


# -- resumability -------------------------------------------------------------------------------------


async def test_polling_closes_early_and_get_resumes_with_last_event_id(port: FakePort) -> None:
    app = mcp_asgi_app(port, sse_poll_after=0, retry_ms=250)
    sid = await init_session(app)
    async with open_request(app, "POST", headers=session_headers(sid), body=call(11, "gate")) as live:
        body = await live.read_all()
        events = parse_sse(body)
        assert events[0]["data"] == "" and events[0]["retry"] == "250"
        assert events[-1] == {"retry": "250"}  # the hint before the early close
        assert not any(json.loads(e["data"]).get("id") == 11 for e in events if e.get("data"))
        last_id = [e["id"] for e in events if "id" in e][-1]
        port.gate.set()
        resume = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": last_id}
        status, _, rest = await request(app, "GET", headers=resume)
        assert status == 200
        messages = sse_messages(rest)
        assert messages[-1] == {"jsonrpc": "2.0", "id": 11, "result": {"released": True}}
        ids = [e["id"] for e in parse_sse(rest)]
        assert last_id not in ids and len(set(ids)) == len(ids)


async def test_the_handler_ends_its_sse_connection_and_the_client_resumes(port: FakePort) -> None:
    app = mcp_asgi_app(port, retry_ms=300)  # no sse_poll_after: only the handler's request ends it
    sid = await init_session(app)
    with trio.fail_after(5):
        async with open_request(app, "POST", headers=session_headers(sid), body=call(21, "poll")) as live:
            events = parse_sse(await live.read_all())  # ends while the request still runs
            assert events[-1] == {"retry": "300"}
            sent = [json.loads(e["data"]) for e in events if e.get("data")]
            assert [m.get("method") for m in sent] == ["notifications/message"]  # the control item: no event
            last_id = [e["id"] for e in events if "id" in e][-1]
            port.gate.set()
            resume = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": last_id}
            status, _, rest = await request(app, "GET", headers=resume)
    # The resumed GET is not cut again by the request that already ended the POST's connection.
    assert status == 200 and sse_messages(rest) == [{"jsonrpc": "2.0", "id": 21, "result": {"polled": True}}]


async def test_a_stateless_stream_ignores_the_close_request(app: McpHttpApp) -> None:
    hdrs = {**STATELESS_HEADERS, "mcp-name": "poll"}
    status, _, body = await request(app, "POST", headers=hdrs, body=stateless_call(5, "poll"))
    events = parse_sse(body)
    assert status == 200 and [json.loads(e["data"]).get("method") for e in events] == [
        "notifications/progress",
        None,
    ]
    json_only = {**hdrs, "accept": "application/json"}
    status, _, body = await request(app, "POST", headers=json_only, body=stateless_call(5, "poll"))
    assert status == 200 and json.loads(body)["result"]["stateless"] is True


async def test_disconnect_loses_nothing_and_resume_replays_after_the_cursor(
    app: McpHttpApp, port: FakePort
) -> None:
    sid = await init_session(app)
    async with open_request(app, "POST", headers=session_headers(sid), body=call(12, "gate")) as live:
        priming = await live.next_event()
        log = await live.next_event()
        assert (
            priming is not None
            and log is not None
            and json.loads(log["data"])["method"] == "notifications/message"
        )
        live.disconnect()
        await trio.testing.wait_all_tasks_blocked()
        port.gate.set()
        resume = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": priming["id"]}
        _, _, rest = await request(app, "GET", headers=resume)
        messages = sse_messages(rest)
        assert [m.get("method") for m in messages] == ["notifications/message", None]
        assert messages[-1]["result"] == {"released": True}


async def test_unknown_last_event_id_opens_a_fresh_standalone_stream(app: McpHttpApp) -> None:
    sid = await init_session(app)
    hdrs = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": "999-3"}
    async with open_request(app, "GET", headers=hdrs) as live:
        assert live.status == 200
        priming = await live.next_event()
        assert priming is not None and priming["data"] == ""


# -- batches (2025-03-26 only) ------------------------------------------------------------------------


async def test_batch_for_2025_03_26_answers_all_requests(port: FakePort) -> None:
    for app in (mcp_asgi_app(port), mcp_asgi_app(port, json_response=True)):
        sid = await init_session(app)
        batch = [
            call(1, "echo", {"a": 1}),
            {"jsonrpc": "2.0", "method": "notifications/x"},
            call(2, "progress"),
            {"bad": 1},
        ]
        hdrs = {**BOTH, "mcp-session-id": sid, "mcp-protocol-version": "2025-03-26"}
        status, headers, body = await request(app, "POST", headers=hdrs, body=batch)
        assert status == 200
        if headers["content-type"] == "application/json":
            answers = json.loads(body)
        else:
            answers = [m for m in sse_messages(body) if "id" in m]
        by_id = {a["id"]: a for a in answers}
        assert by_id[1]["result"] == {"a": 1} and by_id[2]["result"] == {"done": True}
        assert by_id[None]["error"]["code"] == -32600
        notes_only = [{"jsonrpc": "2.0", "method": "notifications/y"}]
        assert (await request(app, "POST", headers=hdrs, body=notes_only))[0] == 202


async def test_batches_are_refused_for_later_revisions(app: McpHttpApp) -> None:
    sid = await init_session(app)
    status, _, body = await request(app, "POST", headers=session_headers(sid), body=[call(1, "echo")])
    assert status == 400 and json.loads(body)["error"]["code"] == -32600


# -- lifespan -------------------------------------------------------------------------------------


async def test_lifespan_protocol_is_acknowledged(app: McpHttpApp) -> None:
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_a_failing_port_gets_500_with_a_jsonrpc_body_not_a_dropped_connection(
    app: McpHttpApp, port: FakePort, caplog: pytest.LogCaptureFixture
) -> None:
    sid = await init_session(app)
    port.broken = True
    status, _, body = await request(app, "POST", headers=session_headers(sid), body=call(2, "echo"))
    assert status == 500
    assert json.loads(body)["error"] == {"code": -32603, "message": "Internal error"}
    assert b"secret" not in body and "secret internals" in caplog.text


async def test_last_event_id_never_crosses_sessions(port: FakePort) -> None:
    app = mcp_asgi_app(port, sse_poll_after=0)
    one, two = await init_session(app), await init_session(app)
    async with open_request(app, "POST", headers=session_headers(one), body=call(11, "gate")) as live:
        events = parse_sse(await live.read_all())
        port.gate.set()
        resume = {"accept": "text/event-stream", "mcp-session-id": two, "last-event-id": events[0]["id"]}
        async with open_request(app, "GET", headers=resume) as other:
            priming = await other.next_event()
            assert priming is not None and priming["data"] == ""
            with trio.move_on_after(0.2):
                leaked = await other.next_event()
                raise AssertionError(f"session two saw {leaked}")


async def test_a_refused_submit_after_create_session_leaves_no_session(
    app: McpHttpApp, port: FakePort
) -> None:
    port.busy = True
    status, headers, _ = await request(app, "POST", headers={"accept": "application/json"}, body=INIT)
    assert status == 429 and "mcp-session-id" not in headers
    assert port.sessions == {} and len(port.closed) == 1


async def test_allowed_browser_origins_get_cors_headers_and_preflight(app: McpHttpApp) -> None:
    origin = {"origin": "http://localhost:6274"}
    status, headers, _ = await request(app, "OPTIONS", headers=origin)
    assert status == 204
    assert headers["access-control-allow-origin"] == "http://localhost:6274"
    assert "mcp-session-id" in headers["access-control-allow-headers"]
    assert "POST" in headers["access-control-allow-methods"]
    status, headers, _ = await request(
        app, "POST", headers={"accept": "application/json", **origin}, body=INIT
    )
    assert status == 200 and headers["access-control-allow-origin"] == "http://localhost:6274"
    assert "mcp-session-id" in headers["access-control-expose-headers"]
    status, headers, _ = await request(app, "OPTIONS", headers={"origin": "http://evil.example"})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, headers, _ = await request(app, "POST", headers={"accept": "application/json"}, body=INIT)
    assert "access-control-allow-origin" not in headers  # no Origin: not a browser, no CORS


async def test_the_poll_deadline_runs_on_trio_time(
    port: FakePort, autojump_clock: trio.testing.MockClock
) -> None:
    app = mcp_asgi_app(port, sse_poll_after=5, retry_ms=700)
    sid = await init_session(app)
    start = trio.current_time()
    async with open_request(app, "POST", headers=session_headers(sid), body=call(13, "gate")) as live:
        events = parse_sse(await live.read_all())
        assert trio.current_time() - start == pytest.approx(5)
        assert [e.get("data", "")[:20] for e in events[:2]] == ["", '{"jsonrpc":"2.0","me']
        assert events[-1] == {"retry": "700"}
        port.gate.set()
    # Without the option the same request's connection stays until its answer, however long.
    patient = mcp_asgi_app(port)
    port.gate = trio.Event()
    async with open_request(patient, "POST", headers=session_headers(sid), body=call(14, "gate")) as live:
        await live.next_event()
        await live.next_event()
        await trio.sleep(3600)
        port.gate.set()
        rest = await live.read_all()
        assert json.loads(parse_sse(rest)[-1]["data"])["result"] == {"released": True}


async def test_a_stream_delivered_in_full_is_not_kept_for_replay(app: McpHttpApp) -> None:
    sid = await init_session(app)
    _, _, body = await request(app, "POST", headers=session_headers(sid), body=call(15, "progress"))
    first_id = parse_sse(body)[0]["id"]
    resume = {"accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": first_id}
    async with open_request(app, "GET", headers=resume) as live:
        priming = await live.next_event()
        # Not a replay of the finished stream: a fresh standalone stream under a new stream key.
        assert priming is not None and priming["data"] == ""
        assert priming["id"].split("-")[0] != first_id.split("-")[0]
    assert sum(len(streams) for streams in app.state.streams.values()) <= 1  # at most the GET's own
