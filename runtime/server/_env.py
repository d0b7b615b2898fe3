"""What a request handler can reach while it runs: the seam between dispatch and the session runtime.

``dispatch`` (tools/resources/prompts and the ``Context`` users see) is written against this protocol;
the session actor and the stateless request runner implement it. Every state operation here becomes a
message to the StateStoreServer actor in the real runtime, which is why they are async and take bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..protocol import LoggingLevel, Notification, RequestId
from ._state_handle import StateHandle


class RequestEnv(Protocol):
    """One in-flight request, as seen by its handler."""

    #: None for a 2026-07-28 (stateless) request: there is no session.
    session_id: str | None
    #: Whose values the state operations reach: the request's state handle if it names (or opened)
    #: one, else its session; None when it has neither (then they raise ``NoSessionState``).
    state_owner: str | None
    #: The state handle the request names (a tool's ``StateHandle`` argument) or opened; else None.
    handle: StateHandle | None
    request_id: RequestId
    protocol_version: str
    #: The client's capabilities as sent (initialize params or the stateless ``_meta``), wire form.
    client_capabilities: Mapping[str, Any]
    client_info: Mapping[str, Any] | None
    #: ``_meta.progressToken`` of the request; None when the client asked for no progress.
    progress_token: str | int | None
    #: Minimum level the client wants log notifications for; None means send none.
    log_level: LoggingLevel | None

    async def send_related(self, notification: Notification) -> None:
        """Send a notification tied to this request (progress, log): it travels on the request's stream."""
        ...

    async def request_client(
        self, method: str, params: Mapping[str, Any], timeout: float | None = None
    ) -> Any:
        """Send a server-to-client request (``elicitation/create``, ``sampling/createMessage``,
        ``roots/list``) on this request's stream and wait for the client's result. Raises
        ``JsonRpcError`` when the client answers with an error, ``trio.TooSlowError`` on timeout."""
        ...

    async def load_value(self, key: str) -> bytes | None:
        """The state owner's stored value (codec bytes) or None. Raises ``NoSessionState`` without one."""
        ...

    async def store_value(self, key: str, value: bytes) -> None:
        """Store a value of the state owner (codec bytes). Raises ``NoSessionState`` without one."""
        ...

    async def update_value(self, key: str, fn: Callable[[Any], Any], default: Any) -> Any:
        """Atomically store ``fn(old)`` (``old`` decoded, ``default`` if absent; the result encoded
        with the codec) and return it; ``fn`` runs where the value is owned (the StateStoreServer), so
        nothing interleaves between the read and the write. If ``fn`` or the codec raises, nothing is
        written and the exception propagates. Raises ``NoSessionState`` when stateless."""
        ...

    async def delete_value(self, key: str) -> None:
        """Forget a value of the state owner. Raises ``NoSessionState`` without one."""
        ...

    async def use_handle(self, handle: StateHandle) -> None:
        """The request names ``handle``: check it may use it (``HandleRefused`` if not), then make it
        the state owner."""
        ...

    async def open_handle(
        self, *, ttl: float | None = None, idle_timeout: float | None = None
    ) -> StateHandle:
        """Mint a state handle owned by this request's client; it becomes the state owner unless the
        request already names a handle."""
        ...

    async def close_handle(self, handle: StateHandle) -> None:
        """End ``handle`` and drop its values (``HandleRefused`` if this client may not)."""
        ...

    async def set_log_level(self, level: LoggingLevel) -> None:
        """``logging/setLevel`` (handshake era only): the session's threshold from now on."""
        ...

    async def subscribe(self, uri: str) -> None:
        """``resources/subscribe``: this session wants ``notifications/resources/updated`` for ``uri``."""
        ...

    async def unsubscribe(self, uri: str) -> None:
        """``resources/unsubscribe``."""
        ...


class NoSessionState(RuntimeError):
    """State was used where there is nothing to keep it: a 2026-07-28 request (no session) that names
    no state handle.

    A loud error rather than silently returning defaults: a handler that relies on state across calls
    would otherwise appear to work and quietly lose data.
    """

    def __init__(self) -> None:
        super().__init__(
            "state is not available for this stateless (2026-07-28) request: it has no session and names "
            "no state handle. "
            "Give the tool a StateHandle parameter and pass it the handle that ctx.open_handle() returned "
            "(or call ctx.open_handle() in this request), or serve the 2025-11-25 handshake era "
            "(docs/server.md, 'State handles')."
        )
