"""The handshake-era (2025-11-25 and earlier) MCP session lifecycle as a sans-IO state machine.

h11-style: the session actor feeds every incoming message to `SessionLifecycle.receive` and gets back a
value saying what to do with it (`Dispatch`, `StartSession`, `Reply`, `Drop`); the machine never does
I/O and never raises for anything a peer can send. States::

    NEW --initialize--> INITIALIZING --notifications/initialized--> READY
    NEW | INITIALIZING | READY --start_closing()--> CLOSING --finish_closing()--> CLOSED
    any --finish_closing()--> CLOSED

Decisions follow the spec: before `initialize` only `ping` is served; a second `initialize` is refused;
nothing is served once closing. In INITIALIZING (our `initialize` answer is out, the client's
`notifications/initialized` is not in yet) requests are served, as the official SDK does: the spec's
ordering rule binds the client, and refusing would only break clients that pipeline.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

import attrs
import cattrs

from ._jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    ErrorResponse,
    Malformed,
    Message,
    Notification,
    Request,
    error_response,
)
from ._records import ClientCapabilities, Implementation, InitializeParams
from ._stateless import is_stateless_request
from ._versions import allows_batches, method_exists_in, negotiate_version
from ._wire import from_wire


class LifecycleState(enum.Enum):
    NEW = "new"
    INITIALIZING = "initializing"
    READY = "ready"
    CLOSING = "closing"
    CLOSED = "closed"


@attrs.frozen
class Dispatch:
    """Serve this message: route the request/notification to its handler, or the response to its waiter."""

    message: Message


@attrs.frozen
class StartSession:
    """A valid `initialize`: answer `request` with an `InitializeResult` at `protocol_version`."""

    request: Request
    protocol_version: str
    client_info: Implementation
    client_capabilities: ClientCapabilities


@attrs.frozen
class Reply:
    """Answer with this error and do nothing else."""

    error: ErrorResponse


@attrs.frozen
class Drop:
    """Drop the message (a notification the current state has no use for); `reason` is for the log."""

    reason: str


Action: TypeAlias = Dispatch | StartSession | Reply | Drop

_PRE_INIT_METHODS = frozenset({"ping"})


class SessionLifecycle:
    """One session's lifecycle; see the module docstring for the transitions.

    Records the negotiated version, the client's info and capabilities once `initialize` is accepted.
    """

    def __init__(self) -> None:
        self.state = LifecycleState.NEW
        self.protocol_version: str | None = None
        self.client_info: Implementation | None = None
        self.client_capabilities: ClientCapabilities | None = None

    def __repr__(self) -> str:
        return f"SessionLifecycle(state={self.state.name}, protocol_version={self.protocol_version!r})"

    @property
    def allows_batches(self) -> bool:
        """Whether the negotiated revision (2025-03-26 only) lets the client send JSON-RPC batches."""
        return allows_batches(self.protocol_version)

    def receive(self, message: Message | Malformed) -> Action:
        """Decide what to do with one incoming message; may move NEW -> INITIALIZING -> READY."""
        if isinstance(message, Malformed):
            return Reply(message.reply)
        if isinstance(message, Request):
            return self._receive_request(message)
        if isinstance(message, Notification):
            return self._receive_notification(message)
        # Responses answer our own requests (ping, sampling, ...); only a live session has any out.
        if self.state in (LifecycleState.CLOSING, LifecycleState.CLOSED):
            return Drop("response after the session closed")
        return Dispatch(message)

    def _receive_request(self, request: Request) -> Action:
        state = self.state
        if state is LifecycleState.CLOSED or state is LifecycleState.CLOSING:
            return Reply(error_response(request.id, INVALID_REQUEST, "Session is closed"))
        if request.method == "initialize":
            if state is not LifecycleState.NEW:
                return Reply(error_response(request.id, INVALID_REQUEST, "Session is already initialized"))
            return self._initialize(request)
        if state is LifecycleState.NEW:
            if request.method in _PRE_INIT_METHODS:
                return Dispatch(request)
            return Reply(
                error_response(
                    request.id,
                    INVALID_REQUEST,
                    f"Session not initialized: send initialize before {request.method}",
                )
            )
        if is_stateless_request(request):
            # The SDK's answer too: a 2026-07-28 envelope does not belong on a handshake session.
            return Reply(
                error_response(
                    request.id,
                    INVALID_REQUEST,
                    "This session uses the initialize handshake; 2026-07-28 envelope requests are refused",
                )
            )
        assert self.protocol_version is not None
        if not method_exists_in(request.method, self.protocol_version):
            return Reply(error_response(request.id, METHOD_NOT_FOUND, f"Method not found: {request.method}"))
        return Dispatch(request)

    def _initialize(self, request: Request) -> Action:
        try:
            params = from_wire(request.params if request.params is not None else {}, InitializeParams)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
            return Reply(
                error_response(request.id, INVALID_PARAMS, "Invalid initialize params", _describe(exc))
            )
        version = negotiate_version(params.protocol_version)
        self.state = LifecycleState.INITIALIZING
        self.protocol_version = version
        self.client_info = params.client_info
        self.client_capabilities = params.capabilities
        return StartSession(request, version, params.client_info, params.capabilities)

    def _receive_notification(self, notification: Notification) -> Action:
        state = self.state
        if state is LifecycleState.CLOSED or state is LifecycleState.CLOSING:
            return Drop(f"{notification.method} after the session closed")
        if notification.method == "notifications/initialized":
            if state is LifecycleState.INITIALIZING:
                self.state = LifecycleState.READY
                return Drop("handshake complete")
            if state is LifecycleState.NEW:
                return Drop("notifications/initialized before initialize")
            return Drop("duplicate notifications/initialized")
        if state is LifecycleState.NEW:
            return Drop(f"{notification.method} before initialize")
        return Dispatch(notification)

    def start_closing(self) -> None:
        """Stop accepting work (idle timeout, DELETE, end of stream); in-flight requests may finish."""
        if self.state is not LifecycleState.CLOSED:
            self.state = LifecycleState.CLOSING

    def finish_closing(self) -> None:
        """The session is gone; everything from now on is refused or ignored."""
        self.state = LifecycleState.CLOSED


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)
