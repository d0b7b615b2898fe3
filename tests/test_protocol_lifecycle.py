"""Version negotiation and every transition of the handshake-era session lifecycle, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from mcpvisor.runtime.protocol import (
    HANDSHAKE_VERSIONS,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PROTOCOL_VERSION_META_KEY,
    SUPPORTED_VERSIONS,
    ClientCapabilities,
    Dispatch,
    Drop,
    ErrorResponse,
    Implementation,
    LifecycleState,
    Notification,
    Reply,
    Request,
    Response,
    RootsCapability,
    SessionLifecycle,
    StartSession,
    allows_batches,
    is_stateless,
    is_supported,
    method_exists_in,
    negotiate_version,
    parse_message,
)

INIT_PARAMS: dict[str, Any] = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"roots": {"listChanged": True}, "sampling": {}},
    "clientInfo": {"name": "client", "version": "1.0"},
}


def initialize(lc: SessionLifecycle, request_id: int = 0, **overrides: Any) -> Any:
    return lc.receive(Request(request_id, "initialize", {**INIT_PARAMS, **overrides}))


def ready() -> SessionLifecycle:
    lc = SessionLifecycle()
    initialize(lc)
    lc.receive(Notification("notifications/initialized"))
    assert lc.state is LifecycleState.READY
    return lc


def error_code(action: Any) -> int:
    assert isinstance(action, Reply), action
    return action.error.error.code


# --- versions --------------------------------------------------------------------------------------------


def test_supported_versions() -> None:
    assert SUPPORTED_VERSIONS == ("2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
    assert is_stateless("2026-07-28")
    assert not is_stateless("2025-11-25")
    assert is_supported("2024-11-05")
    assert not is_supported("2023-01-01")


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS)
def test_negotiation_echoes_a_supported_handshake_version(version: str) -> None:
    assert negotiate_version(version) == version


@pytest.mark.parametrize("requested", ["2099-01-01", "2026-07-28", "garbage", None, 5])
def test_negotiation_falls_back_to_latest_handshake_version(requested: object) -> None:
    assert negotiate_version(requested) == "2025-11-25"


def test_batches_only_in_2025_03_26() -> None:
    assert allows_batches("2025-03-26")
    for version in ("2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28", None):
        assert not allows_batches(version)


def test_methods_per_revision() -> None:
    assert method_exists_in("ping", "2025-11-25")
    assert not method_exists_in("ping", "2026-07-28")
    assert not method_exists_in("logging/setLevel", "2026-07-28")
    assert method_exists_in("server/discover", "2026-07-28")
    assert not method_exists_in("server/discover", "2025-11-25")
    assert method_exists_in("tools/call", "2026-07-28")
    assert method_exists_in("tools/call", "2024-11-05")


# --- lifecycle transitions -------------------------------------------------------------------------------


def test_new_session_state() -> None:
    lc = SessionLifecycle()
    assert lc.state is LifecycleState.NEW
    assert lc.protocol_version is None
    assert lc.client_info is None
    assert lc.client_capabilities is None
    assert not lc.allows_batches


def test_new_to_initializing_on_initialize_records_the_client() -> None:
    lc = SessionLifecycle()
    action = initialize(lc, 1)
    assert isinstance(action, StartSession)
    assert action.request.id == 1
    assert action.protocol_version == "2025-06-18"
    assert action.client_info == Implementation("client", "1.0")
    assert action.client_capabilities == ClientCapabilities(roots=RootsCapability(True), sampling={})
    assert lc.state is LifecycleState.INITIALIZING
    assert (lc.protocol_version, lc.client_info, lc.client_capabilities) == (
        "2025-06-18",
        action.client_info,
        action.client_capabilities,
    )


def test_initialize_with_unknown_version_negotiates_latest() -> None:
    lc = SessionLifecycle()
    action = initialize(lc, protocolVersion="2030-01-01")
    assert isinstance(action, StartSession)
    assert action.protocol_version == "2025-11-25"


def test_initialize_2025_03_26_allows_batches() -> None:
    lc = SessionLifecycle()
    initialize(lc, protocolVersion="2025-03-26")
    assert lc.allows_batches


@pytest.mark.parametrize(
    "params",
    [
        None,
        {},
        {"protocolVersion": "2025-06-18", "capabilities": {}},  # no clientInfo
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x"}},  # no version
        {"protocolVersion": 5, "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}},
        {"protocolVersion": "2025-06-18", "capabilities": "no", "clientInfo": {"name": "x", "version": "1"}},
    ],
)
def test_initialize_with_bad_params_is_invalid_params_and_stays_new(params: Any) -> None:
    lc = SessionLifecycle()
    assert error_code(lc.receive(Request(1, "initialize", params))) == INVALID_PARAMS
    assert lc.state is LifecycleState.NEW
    assert lc.protocol_version is None


def test_requests_before_initialize_are_refused_except_ping() -> None:
    lc = SessionLifecycle()
    action = lc.receive(Request(1, "tools/list"))
    assert error_code(action) == INVALID_REQUEST
    assert isinstance(action, Reply)
    assert action.error.id == 1
    assert lc.receive(Request(2, "ping")) == Dispatch(Request(2, "ping"))
    assert lc.state is LifecycleState.NEW


def test_notifications_before_initialize_are_ignored() -> None:
    lc = SessionLifecycle()
    assert isinstance(lc.receive(Notification("notifications/cancelled", {"requestId": 1})), Drop)
    assert isinstance(lc.receive(Notification("notifications/initialized")), Drop)
    assert lc.state is LifecycleState.NEW


def test_initializing_to_ready_on_initialized() -> None:
    lc = SessionLifecycle()
    initialize(lc)
    action = lc.receive(Notification("notifications/initialized"))
    assert isinstance(action, Drop)
    assert lc.state is LifecycleState.READY


def test_requests_while_initializing_are_served() -> None:
    lc = SessionLifecycle()
    initialize(lc)
    assert lc.receive(Request(5, "tools/list")) == Dispatch(Request(5, "tools/list"))
    assert lc.state is LifecycleState.INITIALIZING


def test_second_initialize_is_refused_in_every_live_state() -> None:
    lc = SessionLifecycle()
    initialize(lc)
    assert error_code(initialize(lc, 2)) == INVALID_REQUEST
    lc.receive(Notification("notifications/initialized"))
    assert error_code(initialize(lc, 3)) == INVALID_REQUEST
    assert lc.state is LifecycleState.READY
    assert lc.protocol_version == "2025-06-18"


def test_ready_dispatches_requests_notifications_and_responses() -> None:
    lc = ready()
    for message in (
        Request(1, "tools/call", {"name": "t"}),
        Notification("notifications/cancelled", {"requestId": 1}),
        Response(99, {}),
        ErrorResponse(98, parse_error := parse_message(b"{").reply.error),  # type: ignore[union-attr]
    ):
        assert lc.receive(message) == Dispatch(message)
    assert parse_error.code == -32700


def test_duplicate_initialized_is_ignored() -> None:
    lc = ready()
    assert isinstance(lc.receive(Notification("notifications/initialized")), Drop)
    assert lc.state is LifecycleState.READY


def test_malformed_input_is_replied_in_any_state() -> None:
    lc = ready()
    action = lc.receive(parse_message(b"{"))
    assert error_code(action) == -32700


def test_stateless_envelope_on_a_handshake_session_is_refused() -> None:
    lc = ready()
    request = Request(1, "tools/list", {"_meta": {PROTOCOL_VERSION_META_KEY: "2026-07-28"}})
    assert error_code(lc.receive(request)) == INVALID_REQUEST
    # A plain progressToken in _meta is handshake-era and fine.
    plain = Request(2, "tools/list", {"_meta": {"progressToken": 1}})
    assert lc.receive(plain) == Dispatch(plain)


def test_stateless_only_method_on_a_handshake_session_is_method_not_found() -> None:
    lc = ready()
    assert error_code(lc.receive(Request(1, "server/discover"))) == METHOD_NOT_FOUND


@pytest.mark.parametrize("state_setup", ["new", "initializing", "ready"])
def test_start_closing_then_everything_refused_or_ignored(state_setup: str) -> None:
    lc = SessionLifecycle()
    if state_setup != "new":
        initialize(lc)
    if state_setup == "ready":
        lc.receive(Notification("notifications/initialized"))
    lc.start_closing()
    assert lc.state is LifecycleState.CLOSING
    assert error_code(lc.receive(Request(1, "tools/list"))) == INVALID_REQUEST
    assert error_code(lc.receive(Request(2, "ping"))) == INVALID_REQUEST
    assert error_code(initialize(lc, 3)) == INVALID_REQUEST
    assert isinstance(lc.receive(Notification("notifications/initialized")), Drop)
    assert isinstance(lc.receive(Response(1, {})), Drop)
    assert lc.state is LifecycleState.CLOSING


def test_closing_to_closed_and_closed_is_final() -> None:
    lc = ready()
    lc.start_closing()
    lc.finish_closing()
    assert lc.state is LifecycleState.CLOSED
    lc.start_closing()  # no way back from CLOSED
    assert lc.state is LifecycleState.CLOSED
    assert error_code(lc.receive(Request(1, "tools/list"))) == INVALID_REQUEST
    assert isinstance(lc.receive(Notification("notifications/cancelled")), Drop)


def test_finish_closing_from_any_state() -> None:
    lc = SessionLifecycle()
    lc.finish_closing()
    assert lc.state is LifecycleState.CLOSED
    assert error_code(initialize(lc)) == INVALID_REQUEST


def test_repr_names_state_and_version() -> None:
    lc = ready()
    assert repr(lc) == "SessionLifecycle(state=READY, protocol_version='2025-06-18')"


class LifecycleMachine(RuleBasedStateMachine):
    """A reference model of which messages each state serves, checked against the real machine."""

    def __init__(self) -> None:
        super().__init__()
        self.lc = SessionLifecycle()
        self.model = "new"
        self.initialized = False
        self.next_id = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    @rule(version=st.sampled_from(["2025-11-25", "2024-11-05", "2099-01-01"]))
    def send_initialize(self, version: str) -> None:
        action = initialize(self.lc, self._id(), protocolVersion=version)
        if self.model == "new":
            assert isinstance(action, StartSession)
            self.model = "initializing"
            self.initialized = True
        else:
            assert error_code(action) == INVALID_REQUEST

    @rule()
    def send_initialized(self) -> None:
        assert isinstance(self.lc.receive(Notification("notifications/initialized")), Drop)
        if self.model == "initializing":
            self.model = "ready"

    @rule(method=st.sampled_from(["ping", "tools/list", "resources/read"]))
    def send_request(self, method: str) -> None:
        action = self.lc.receive(Request(self._id(), method))
        served = self.model in ("initializing", "ready") or (self.model == "new" and method == "ping")
        assert isinstance(action, Dispatch) == served
        if not served:
            assert error_code(action) == INVALID_REQUEST

    @rule()
    def close(self) -> None:
        self.lc.start_closing()
        if self.model != "closed":
            self.model = "closing"

    @rule()
    def finish(self) -> None:
        self.lc.finish_closing()
        self.model = "closed"

    @invariant()
    def state_matches_model(self) -> None:
        assert self.lc.state.value == self.model
        assert (self.lc.protocol_version is not None) == self.initialized


TestLifecycleModel = LifecycleMachine.TestCase
TestLifecycleModel.settings = settings(max_examples=40, stateful_step_count=15, deadline=None)
