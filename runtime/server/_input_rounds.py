"""Multi round-trip requests (SEP-2322, 2026-07-28): a handler asks the client for input by answering.

A 2026-07-28 request has no session and no stream back to the client, so a tool cannot send
``elicitation/create`` and wait. It answers with an ``InputRequiredResult`` instead: what it needs
(``inputRequests``, keyed by names it picks) and an opaque ``requestState``; the client fulfils the
requests and sends the same request again with ``inputResponses`` (same keys) and the state echoed.

Here a handler returns ``InputRequired(requests, state=...)`` and, on the retry, reads
``ctx.input_responses`` and ``ctx.request_state``. The state travels through the client, so it is
sealed with an HMAC keyed by the ``Server`` and bound to the method and the tool / prompt / URI: a
client that edits it, or replays it on another tool, gets -32602 before the handler runs. It is signed,
not encrypted: the client can read it, so keep secrets out of it.

Handshake-era sessions have a stream, so there dispatch fulfils the requests itself (one
server-to-client request each) and calls the handler again with the answers: the same handler serves
both eras. ``ctx.elicit``/``sample``/``list_roots`` go the other way round: on a 2026-07-28 request
they end the round with an input request of their own (key ``_ask<n>``) and, on the retry, return the
client's answer, the answers of earlier rounds riding along in the sealed state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ..protocol import INVALID_PARAMS, JsonRpcError

#: Methods a server may ask for inside an InputRequiredResult, and the client capability each needs.
INPUT_METHODS: Final[Mapping[str, str]] = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}
#: Prefix of the keys ``ctx.elicit`` & co. use for their own input requests.
ASK_PREFIX: Final = "_ask"


def _requests(value: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, request in value.items():
        if not isinstance(key, str) or not isinstance(request, Mapping):
            raise TypeError("InputRequired: requests maps a key (str) to {'method': ..., 'params': {...}}")
        method = request.get("method")
        if method not in INPUT_METHODS:
            raise ValueError(
                f"InputRequired: request {key!r} asks for {method!r}; a server may ask for "
                f"{', '.join(INPUT_METHODS)} only"
            )
        params = request.get("params", {})
        if not isinstance(params, Mapping):
            raise TypeError(f"InputRequired: params of request {key!r} must be an object")
        out[key] = {"method": method, "params": dict(params)}
    return out


@attrs.frozen
class InputRequired:
    """Return from a tool, prompt or resource handler to ask the client for input first (SEP-2322).

    ``requests`` maps keys you choose to ``{"method": ..., "params": ...}`` (build them with
    ``InputRequired.elicitation``, ``.sampling`` and ``.roots``); the client's answers come back in
    ``ctx.input_responses`` under the same keys. ``state`` (any string) comes back, verified, in
    ``ctx.request_state``: keep there what the next round needs, since nothing else survives between
    rounds. Keys starting with ``_ask`` belong to ``ctx.elicit`` & co.: pick others.
    """

    requests: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, converter=_requests)
    state: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.state is not None and not isinstance(self.state, str):
            raise TypeError("InputRequired: state must be a string")
        if not self.requests and self.state is None:
            raise ValueError("InputRequired needs requests, a state, or both")

    @staticmethod
    def elicitation(message: str, requested_schema: Mapping[str, Any]) -> dict[str, Any]:
        """An ``elicitation/create`` request (the answer: ``{"action": ..., "content": ...}``)."""
        return {
            "method": "elicitation/create",
            "params": {"message": message, "requestedSchema": dict(requested_schema)},
        }

    @staticmethod
    def sampling(messages: list[Mapping[str, Any]], max_tokens: int, **options: Any) -> dict[str, Any]:
        """A ``sampling/createMessage`` request: ``messages`` and ``options`` (``systemPrompt=...``)
        in wire form."""
        return {
            "method": "sampling/createMessage",
            "params": {"messages": [dict(m) for m in messages], "maxTokens": max_tokens, **options},
        }

    @staticmethod
    def roots() -> dict[str, Any]:
        """A ``roots/list`` request (the answer: ``{"roots": [...]}``)."""
        return {"method": "roots/list", "params": {}}


class NeedsInput(Exception):
    """Raised by ``ctx.elicit`` & co. on a 2026-07-28 request whose answer has not come yet: dispatch
    ends the round with an InputRequiredResult. A handler that catches every ``Exception`` around
    ``ctx.elicit`` must let this one through."""

    def __init__(self, key: str, request: Mapping[str, Any]) -> None:
        super().__init__(f"the client's answer to {request.get('method')} ({key}) is needed first")
        self.key = key
        self.request = request


@attrs.frozen
class RoundInputs:
    """What the client sent back this round: its answers and the verified state."""

    #: Answers to the handler's own ``InputRequired`` requests (its keys), as the client sent them.
    responses: Mapping[str, Any] = attrs.Factory(dict)
    #: The handler's ``InputRequired.state`` from the previous round, verified.
    state: str | None = None
    #: Answers to ``ctx.elicit`` & co., this round's and earlier rounds' (carried in the sealed state).
    asked: Mapping[str, Any] = attrs.Factory(dict)


class StateSeal:
    """Signs ``requestState`` so the server can trust what comes back from the client.

    The token is ``base64url(payload) "." base64url(HMAC-SHA256(key, binding, payload))``; the binding
    (method and tool name / prompt name / URI) stops a state issued for one tool from being accepted by
    another. Servers behind a load balancer need the same key on every process.
    """

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) < 16:
            raise ValueError("request_state_key must be at least 16 bytes")
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, binding: str, payload: bytes) -> bytes:
        return hmac.new(self._key, binding.encode() + b"\0" + payload, hashlib.sha256).digest()

    def seal(self, binding: str, state: str | None, asked: Mapping[str, Any]) -> str:
        payload = json.dumps({"s": state, "a": dict(asked)}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(binding, payload))}"

    def open(self, binding: str, token: Any) -> tuple[str | None, dict[str, Any]]:
        """(state, asked) from a token; JsonRpcError -32602 when it is not one this server sealed."""
        opened = self._verified(binding, token)
        if opened is None:
            raise JsonRpcError(
                INVALID_PARAMS,
                "params.requestState failed its integrity check: send back the requestState of the "
                "previous answer unchanged",
                {"field": "requestState"},
            )
        return opened

    def _verified(self, binding: str, token: Any) -> tuple[str | None, dict[str, Any]] | None:
        if not isinstance(token, str):
            return None
        body, _, mac = token.partition(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
            # Canonical form only: Base64 ignores the spare bits of its last character, and a token
            # that differs from the one we issued is refused even when it decodes to the same bytes.
            if _b64(payload) != body or _b64(signature) != mac:
                return None
            if not hmac.compare_digest(signature, self._mac(binding, payload)):
                return None
            opened = json.loads(payload)
        except (ValueError, binascii.Error):
            return None
        state, asked = (opened.get("s"), opened.get("a")) if isinstance(opened, dict) else (None, None)
        if not (state is None or isinstance(state, str)) or not isinstance(asked, dict):
            return None
        return state, asked


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def read_inputs(params: Mapping[str, Any], seal: StateSeal, binding: str) -> RoundInputs:
    """This round's ``inputResponses`` and ``requestState``, checked (-32602 when malformed/tampered)."""
    responses: Mapping[str, Any] = {}
    if "inputResponses" in params:
        raw = params["inputResponses"]
        if not isinstance(raw, Mapping):
            raise JsonRpcError(
                INVALID_PARAMS, "params.inputResponses must be an object", {"field": "inputResponses"}
            )
        for key, answer in raw.items():
            if not isinstance(answer, Mapping):
                raise JsonRpcError(
                    INVALID_PARAMS,
                    f"params.inputResponses[{key!r}] must be the client's result object",
                    {"field": f"inputResponses.{key}"},
                )
        responses = raw
    state: str | None = None
    asked: dict[str, Any] = {}
    if params.get("requestState") is not None:
        state, asked = seal.open(binding, params["requestState"])
    own = {k: v for k, v in responses.items() if not k.startswith(ASK_PREFIX)}
    asked.update({k: v for k, v in responses.items() if k.startswith(ASK_PREFIX)})
    return RoundInputs(own, state, asked)


def missing_capability(
    requests: Mapping[str, Mapping[str, Any]], capabilities: Mapping[str, Any]
) -> str | None:
    """The first capability the client lacks for ``requests`` (None: it can answer them all)."""
    for request in requests.values():
        needed = INPUT_METHODS[request["method"]]
        if capabilities.get(needed) is None:
            return needed
    return None


def input_required_wire(
    value: InputRequired, seal: StateSeal, binding: str, asked: Mapping[str, Any]
) -> dict[str, Any]:
    """The wire ``InputRequiredResult``; the state is sealed (carrying ``asked``) when there is any."""
    wire: dict[str, Any] = {"resultType": "input_required"}
    if value.requests:
        wire["inputRequests"] = {key: dict(request) for key, request in value.requests.items()}
    if value.state is not None or asked:
        wire["requestState"] = seal.seal(binding, value.state, asked)
    return wire
