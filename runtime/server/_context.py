"""`Context`: what a handler sees of its request, its session and its client.

A handler asks for it by annotating a parameter with `Context`; dispatch builds one per request around
the request's `RequestEnv`. Everything here is async because every operation is a message: state goes to
the StateStoreServer actor, notifications and client requests go out on the request's stream.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ...backends._codec import decode, encode
from ..auth._principal import Principal
from ..protocol import (
    LOGGING_LEVELS,
    CloseSseStream,
    ContentBlock,
    LoggingLevel,
    PromptMessage,
    RequestId,
    TextContent,
    is_level_enabled,
    is_stateless,
    log_notification,
    progress_notification,
    to_wire,
)
from ._env import NoSessionState, RequestEnv
from ._errors import MissingClientCapability
from ._input_rounds import ASK_PREFIX, NeedsInput, RoundInputs
from ._state_handle import HandleRefused, StateHandle

_MISSING: Final = object()


class Context:
    """One request's view of the server: identity, session state, progress, logs, and the client.

    Values set with ``serializable=False`` live only as long as this Context (one request); they never
    reach the state store, so they may be anything (a connection, a lock). ``get_state`` sees them first.
    """

    def __init__(self, env: RequestEnv, inputs: RoundInputs | None = None) -> None:
        self._env = env
        self._local: dict[str, Any] = {}
        #: Set for the requests that may answer InputRequired (tools/call, prompts/get, resources/read).
        self._inputs = inputs
        self._asks = 0

    # -- identity ---------------------------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        """None for a 2026-07-28 (stateless) request: there is no session."""
        return self._env.session_id

    @property
    def handle(self) -> StateHandle | None:
        """The state handle this request's state operations act on: the tool's ``StateHandle``
        argument, or the one ``open_handle`` minted in this request; None if neither."""
        return self._env.handle

    @property
    def request_id(self) -> RequestId:
        return self._env.request_id

    @property
    def protocol_version(self) -> str:
        return self._env.protocol_version

    @property
    def client_capabilities(self) -> Mapping[str, Any]:
        """As the client sent them (wire form): ``"sampling" in ctx.client_capabilities``."""
        return self._env.client_capabilities

    @property
    def client_info(self) -> Mapping[str, Any] | None:
        return self._env.client_info

    @property
    def principal(self) -> Principal | None:
        """Who the request's bearer token names (docs/auth.md): subject, client id, issuer, scopes,
        claims, expiry. None on a server without authentication, and over stdio / in memory."""
        principal = getattr(self._env, "principal", None)
        return principal if isinstance(principal, Principal) else None

    @property
    def headers(self) -> Mapping[str, str]:
        """The HTTP request's headers, lower-cased names, read-only (empty over stdio and in memory).
        ``Authorization`` is left out: the verified token is ``principal``."""
        headers: Mapping[str, str] = getattr(self._env, "headers", None) or {}
        return headers

    # -- multi round-trip input (SEP-2322) ----------------------------------------------------------------

    @property
    def input_responses(self) -> Mapping[str, Any]:
        """The client's answers to the ``InputRequired`` requests of the previous round, by key
        (empty on a first call). Each is the client's result object, e.g. an elicitation's
        ``{"action": "accept", "content": {...}}``; a key may be missing if the client left it out."""
        return self._inputs.responses if self._inputs is not None else {}

    @property
    def request_state(self) -> str | None:
        """The ``state`` of the previous round's ``InputRequired``, verified (None on a first call)."""
        return self._inputs.state if self._inputs is not None else None

    # -- state: the session's, or the handle's ----------------------------------------------------------

    async def get_state(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key`` (request-local values first), else ``default``.

        The values are the request's state handle's when it has one (see ``handle``), else its
        session's. Raises ``NoSessionState`` when there is neither (a 2026-07-28 request naming no
        handle) unless ``key`` was set request-locally.
        """
        local = self._local.get(key, _MISSING)
        if local is not _MISSING:
            return local
        self._require_session()
        data = await self._env.load_value(key)
        return default if data is None else decode(data)

    async def set_state(self, key: str, value: Any, serializable: bool = True) -> None:
        """Store ``value`` for this handle or session (it outlives the request and a restarted actor).

        ``serializable=False`` keeps it in this request only and never touches the store. A value the
        codec cannot serialize raises TypeError naming ``key`` (and the path inside the value).
        """
        if not serializable:
            self._local[key] = value
            return
        self._require_session()
        data = encode(value, key=key)
        await self._env.store_value(key, data)
        self._local.pop(key, None)

    async def update_state(self, key: str, fn: Callable[[Any], Any], *, default: Any = None) -> Any:
        """Atomically replace ``key``'s value with ``fn(old)`` and return the new value.

        ``old`` is the stored value (``default`` when there is none). ``fn`` is a plain sync function,
        called inside the state store's actor, between the read and the write: no other state
        operation of this server interleaves, so concurrent requests never lose each other's updates
        (``get_state`` then ``set_state`` can). On a store shared by several nodes the write is a
        compare-and-set, and ``fn`` is called again on the newer value when another node wrote in
        between. Keep it short and pure: every session of the server waits while it runs. If it
        raises, nothing is written and its exception reaches you; a result the codec cannot store
        raises ``TypeError`` naming ``key``, again writing nothing. A store that times out raises a
        ``StateStoreUnavailable`` saying whether the write was applied (see docs/backends.md).

        A key set with ``serializable=False`` is updated where it lives, in this request, and never
        reaches the store. Raises ``NoSessionState`` on a stateless request otherwise.
        """
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"update_state({key!r}) needs a sync function, got the coroutine function {fn!r}: it runs "
                "inside the state store, where nothing may wait"
            )
        local = self._local.get(key, _MISSING)
        if local is not _MISSING:
            new = fn(local)
            self._local[key] = new
            return new
        self._require_session()
        return await self._env.update_value(key, fn, default)

    async def delete_state(self, key: str) -> None:
        """Forget ``key`` (request-local and stored); deleting a missing key is not an error."""
        was_local = self._local.pop(key, _MISSING) is not _MISSING
        if self._env.state_owner is None and was_local:
            return
        self._require_session()
        await self._env.delete_value(key)

    def _require_session(self) -> None:
        """State needs an owner: the request's handle or its session (``env.state_owner``).

        The env raises this too; checking here keeps the error identical whatever env runs us.
        """
        if self._env.state_owner is None:
            raise NoSessionState()

    async def open_handle(
        self, *, ttl: float | None = None, idle_timeout: float | None = None
    ) -> StateHandle:
        """Mint a state handle (SEP-2567) owned by this request's client and return it.

        Return it from the tool (the model passes it back to tools taking a ``StateHandle``). Unless
        the request already names a handle, this request's state operations act on the new one from
        now on, so a tool can open a handle and fill it in one call. ``ttl`` (seconds from now) is how
        long the handle lasts at most, ``idle_timeout`` how long its actor stays in memory unused (its
        values stay in the store); both default to the server's ``handle_ttl`` / ``handle_idle_timeout``.
        """
        return await self._env.open_handle(ttl=ttl, idle_timeout=idle_timeout)

    async def close_handle(self, handle: StateHandle | None = None) -> None:
        """End ``handle`` (default: this request's) and drop its values; later uses are refused."""
        target = handle if handle is not None else self._env.handle
        if target is None:
            raise ValueError("close_handle: this request names no state handle; pass the one to close")
        try:
            handle_ = StateHandle.__from_json__(target)
        except (TypeError, ValueError) as exc:
            raise HandleRefused(str(exc)) from None
        await self._env.close_handle(handle_)

    # -- progress and logs ------------------------------------------------------------------------------

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Send ``notifications/progress``; does nothing when the client sent no progress token."""
        token = self._env.progress_token
        if token is None:
            return
        await self._env.send_related(progress_notification(token, progress, total, message))

    async def log(self, level: LoggingLevel, message: Any, logger: str | None = None) -> None:
        """Send ``notifications/message`` if the client wants ``level`` (its threshold, or none at all).

        ``message`` may be any JSON value (the spec's ``data``), usually a string.
        """
        if level not in LOGGING_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOGGING_LEVELS)}, not {level!r}")
        if not is_level_enabled(level, self._env.log_level):
            return
        await self._env.send_related(log_notification(level, message, logger))

    async def debug(self, message: Any, logger: str | None = None) -> None:
        await self.log("debug", message, logger)

    async def info(self, message: Any, logger: str | None = None) -> None:
        await self.log("info", message, logger)

    async def warning(self, message: Any, logger: str | None = None) -> None:
        await self.log("warning", message, logger)

    async def error(self, message: Any, logger: str | None = None) -> None:
        await self.log("error", message, logger)

    async def close_sse_stream(self) -> None:
        """End this request's SSE connection now; the request keeps running (SEP-1699 polling).

        Over Streamable HTTP the client gets a ``retry:`` hint, reconnects with GET + Last-Event-ID
        and receives what was sent meanwhile, the final answer included: a long request then holds no
        connection (and no proxy timeout) while it works. Everywhere else (stdio, in-memory, a plain
        JSON answer, a 2026-07-28 stream, which cannot be resumed) it does nothing.
        """
        await self._env.send_related(CloseSseStream())

    # -- asking the client ------------------------------------------------------------------------------

    async def elicit(
        self, message: str, requested_schema: Mapping[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Ask the user (through the client) for structured input: ``elicitation/create``.

        Returns the client's result, e.g. ``{"action": "accept", "content": {...}}`` (or ``decline`` /
        ``cancel``). Raises ``MissingClientCapability`` when the client did not declare elicitation.
        """
        self._require_capability("elicitation")
        params = {"message": message, "requestedSchema": dict(requested_schema)}
        result = await self._ask("elicitation/create", params, timeout)
        return dict(result)

    async def sample(
        self,
        messages: str | Sequence[str | PromptMessage | tuple[str, str | ContentBlock] | Mapping[str, Any]],
        max_tokens: int,
        *,
        system_prompt: str | None = None,
        temperature: float | None = None,
        stop_sequences: Sequence[str] | None = None,
        model_preferences: Mapping[str, Any] | None = None,
        include_context: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Ask the client's model for a completion: ``sampling/createMessage``; returns its result.

        ``messages`` is a string (one user message) or a list of strings (user messages),
        ``(role, text-or-content)`` pairs, ``PromptMessage`` records or wire-form dicts. Raises
        ``MissingClientCapability`` when the client did not declare sampling.
        """
        self._require_capability("sampling")
        items = [messages] if isinstance(messages, str) else list(messages)
        params: dict[str, Any] = {"messages": [_sampling_message(m) for m in items], "maxTokens": max_tokens}
        optional = {
            "systemPrompt": system_prompt,
            "temperature": temperature,
            "stopSequences": list(stop_sequences) if stop_sequences is not None else None,
            "modelPreferences": dict(model_preferences) if model_preferences is not None else None,
            "includeContext": include_context,
            "metadata": dict(metadata) if metadata is not None else None,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        result = await self._ask("sampling/createMessage", params, timeout)
        return dict(result)

    async def list_roots(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """The client's roots (``roots/list``); raises ``MissingClientCapability`` without ``roots``."""
        self._require_capability("roots")
        result = await self._ask("roots/list", {}, timeout)
        return [dict(root) for root in result.get("roots", [])]

    def _require_capability(self, name: str) -> None:
        if self._env.client_capabilities.get(name) is None:
            raise MissingClientCapability(name)

    async def _ask(self, method: str, params: Mapping[str, Any], timeout: float | None) -> Any:
        """A client request on the request's stream; on 2026-07-28 there is none, so the n-th ask of
        the handler ends the round (``NeedsInput``) until the client's retry brings its answer."""
        if (
            self._inputs is None
            or not is_stateless(self._env.protocol_version)
            or getattr(self._env, "blocking_input", False)  # a task body waits for tasks/update
        ):
            return await self._env.request_client(method, params, timeout)
        self._asks += 1
        key = f"{ASK_PREFIX}{self._asks}"
        answer = self._inputs.asked.get(key)
        if answer is None:
            raise NeedsInput(key, {"method": method, "params": dict(params)})
        return answer


def _sampling_message(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return {"role": "user", "content": to_wire(TextContent(item))}
    if isinstance(item, PromptMessage):
        wire: dict[str, Any] = to_wire(item)
        return wire
    if isinstance(item, tuple) and len(item) == 2:
        role, content = item
        block = TextContent(content) if isinstance(content, str) else content
        return {"role": role, "content": to_wire(block)}
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(f"cannot use {type(item).__qualname__} as a sampling message")
