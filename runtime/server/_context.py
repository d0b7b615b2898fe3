"""`Context`: what a handler sees of its request, its session and its client.

A handler asks for it by annotating a parameter with `Context`; dispatch builds one per request around
the request's `RequestEnv`. Everything here is async because every operation is a message: state goes to
the StateStoreServer actor, notifications and client requests go out on the request's stream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ...backends._codec import decode, encode
from ..protocol import (
    LOGGING_LEVELS,
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
from ._port import CloseSseStream

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

    # -- session state ----------------------------------------------------------------------------------

    async def get_state(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key`` (request-local values first), else ``default``.

        Raises ``NoSessionState`` on a stateless request unless ``key`` was set request-locally.
        """
        local = self._local.get(key, _MISSING)
        if local is not _MISSING:
            return local
        self._require_session()
        data = await self._env.load_value(key)
        return default if data is None else decode(data)

    async def set_state(self, key: str, value: Any, serializable: bool = True) -> None:
        """Store ``value`` for this session (it outlives the request and a restarted session actor).

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

    async def delete_state(self, key: str) -> None:
        """Forget ``key`` (request-local and stored); deleting a missing key is not an error."""
        was_local = self._local.pop(key, _MISSING) is not _MISSING
        if self._env.session_id is None and was_local:
            return
        self._require_session()
        await self._env.delete_value(key)

    def _require_session(self) -> None:
        # The env raises this too; checking here keeps the error identical whatever env runs us.
        if self._env.session_id is None:
            raise NoSessionState()

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
