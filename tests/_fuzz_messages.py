"""What the fuzzers send, and what they accept back (issue 7, item 3).

Two kinds of input: raw bytes (junk, and valid messages cut or with a byte changed), and JSON-RPC shapes
(valid-ish messages with random ids, methods, params, nesting, lone surrogates, NaN and huge numbers,
batches). Each input is one `Sent`: its bytes plus the ids of the requests in it that must be answered
exactly once. Ids are unique within a run (`Ids`), so an answer names the one request it is for.

The checks are the same for every transport: every message out is strict JSON text (UTF-8, no NaN) and a
JSON-RPC 2.0 message; every request with a readable id gets exactly one final answer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st


def fuzz_settings(examples: int) -> settings:
    """The suite's fixed budget: ``examples`` derandomized examples, no example database.

    For a longer hunt, ``FUZZ_EXAMPLES=5000`` replaces the count and draws a fresh random seed;
    ``FUZZ_NO_SHRINK=1`` reports the first failure as found (shrinking a stateful run can take minutes).
    """
    hunt = os.environ.get("FUZZ_EXAMPLES")
    return settings(
        max_examples=int(hunt) if hunt else examples,
        derandomize=not hunt,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate] if os.environ.get("FUZZ_NO_SHRINK") else list(Phase),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


#: Methods the runtime knows (and a few it does not), so shapes reach the handlers, not only -32601.
#: Left out: ``subscriptions/listen`` (a stream that stays open by design) and server-to-client answers
#: the fuzz client would have to give.
METHODS = (
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
    "server/discover",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "nonexistent/method",
)
VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28", "1999-01-01")

# Raw JSON tokens spliced into the text after json.dumps (which cannot write most of them).
_RAW = re.compile(r'"\\u0000RAW:(.*?)\\u0000"')
RAW_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000, "-0", "1E+2", "1e-400", "0.5")


def raw(token: str) -> str:
    """A placeholder `dumps` turns into the bare token ``token``."""
    return f"\x00RAW:{token}\x00"


def dumps(obj: object, *, ensure_ascii: bool) -> bytes:
    """JSON text for ``obj`` with `raw` tokens spliced in; lone surrogates are escaped (ensure_ascii) or
    written as raw surrogate bytes (not UTF-8)."""
    text = json.dumps(obj, ensure_ascii=ensure_ascii, allow_nan=True)
    text = _RAW.sub(lambda m: json.loads(f'"{m.group(1)}"'), text)
    return text.encode("utf-8", "surrogatepass")


def _codepoint_text(max_size: int = 12) -> st.SearchStrategy[str]:
    point = st.one_of(
        st.integers(0x20, 0x7E),
        st.integers(0xD800, 0xDFFF),  # lone surrogates
        st.integers(0, 0x10FFFF),
    )
    return st.lists(point, max_size=max_size).map(lambda cps: "".join(map(chr, cps)))


TEXT = st.one_of(st.text(max_size=12), _codepoint_text())
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(RAW_NUMBERS).map(raw),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def deep(draw: st.DrawFn) -> str:
    """Nesting around the decoder's limit (128), or far past it, as a `raw` token: a Python value this
    deep would break the test's own encoder."""
    depth = draw(st.sampled_from([120, 126, 127, 128, 129, 200, 990, 3000]))
    opens = draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    core = draw(st.sampled_from(["[]", "{}", "1", '"x"']))
    return raw(
        "".join("[" if o else '{"a":' for o in opens)
        + core
        + "".join("]" if o else "}" for o in reversed(opens))
    )


class Ids:
    """Hands out request ids no other input of the run used (ints and strings).

    Every id of one `Ids` has the same length whatever ``run`` is, so the draws that depend on an id's
    length (cutting a message short) are the same in every example: hypothesis needs that.
    """

    def __init__(self, run: int = 0) -> None:
        assert 0 <= run < 100_000
        self.run = run
        self.n = 0

    def next(self, as_text: bool) -> int | str:
        self.n += 1
        assert self.n < 10_000
        return f"r{self.run:05d}-{self.n:04d}" if as_text else 1_000_000_000 + self.run * 10_000 + self.n


@attrs.frozen
class Sent:
    """One input: its bytes, and the ids that must get exactly one final answer each."""

    data: bytes
    answered: tuple[int | str, ...] = ()
    batch: bool = False


@st.composite
def _params(draw: st.DrawFn, method: str, tools: tuple[str, ...]) -> Any:
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(JSON_VALUES)
    if choice == 1:
        return {"a": draw(deep())}
    params: dict[str, Any] = {}
    if method == "tools/call":
        params["name"] = draw(st.one_of(st.sampled_from(tools), TEXT)) if tools else draw(TEXT)
        params["arguments"] = draw(st.one_of(st.dictionaries(TEXT, JSON_VALUES, max_size=3), JSON_VALUES))
    elif method == "initialize":
        params["protocolVersion"] = draw(st.one_of(st.sampled_from(VERSIONS), JSON_VALUES))
        params["capabilities"] = draw(st.one_of(st.just({}), JSON_VALUES))
        params["clientInfo"] = draw(st.one_of(st.just({"name": "fuzz", "version": "1"}), JSON_VALUES))
    elif method in ("notifications/cancelled", "notifications/progress"):
        params["requestId"] = draw(st.one_of(st.integers(0, 3), TEXT, JSON_VALUES))
        params["progressToken"] = draw(SCALARS)
        params["progress"] = draw(SCALARS)
    elif method == "logging/setLevel":
        params["level"] = draw(st.one_of(st.sampled_from(["debug", "info", "error", "emergency"]), SCALARS))
    else:
        params.update(
            draw(st.dictionaries(st.sampled_from(["uri", "name", "cursor", "taskId", "ref"]), SCALARS))
        )
    if draw(st.booleans()):
        meta: dict[str, Any] = {"progressToken": draw(SCALARS)}
        if draw(st.integers(0, 3)) == 0:  # the 2026-07-28 envelope, sometimes broken
            meta["io.modelcontextprotocol/protocolVersion"] = draw(
                st.one_of(st.sampled_from(VERSIONS), SCALARS)
            )
            meta["io.modelcontextprotocol/clientCapabilities"] = draw(st.one_of(st.just({}), JSON_VALUES))
        params["_meta"] = meta
    return params


@st.composite
def message_object(draw: st.DrawFn, ids: Ids, tools: tuple[str, ...]) -> tuple[Any, int | str | None]:
    """A valid-ish message as a Python value, and its id when that id is readable and unique."""
    method = draw(st.one_of(st.sampled_from(METHODS), TEXT, SCALARS))
    obj: dict[str, Any] = {"jsonrpc": draw(st.one_of(st.just("2.0"), st.just("2.0"), SCALARS))}
    id_kind = draw(st.sampled_from(["int", "text", "text+junk", "none", "missing", "junk"]))
    request_id: int | str | None = None
    if id_kind in ("int", "text"):
        request_id = ids.next(id_kind == "text")
        obj["id"] = request_id
    elif id_kind == "text+junk":
        obj["id"] = f"{ids.next(True)}{draw(TEXT)}"
    elif id_kind == "none":
        obj["id"] = None
    elif id_kind == "junk":
        obj["id"] = draw(st.one_of(st.booleans(), st.floats(), st.lists(SCALARS, max_size=2)))
    if draw(st.integers(0, 7)) == 0:  # a response or error shape from the client
        if draw(st.booleans()):
            obj["result"] = draw(JSON_VALUES)
        else:
            obj["error"] = draw(
                st.one_of(st.fixed_dictionaries({"code": SCALARS, "message": SCALARS}), JSON_VALUES)
            )
    else:
        obj["method"] = method
        if draw(st.integers(0, 4)):
            obj["params"] = draw(_params(method if isinstance(method, str) else "", tools))
    return obj, request_id


def _well_formed_request(obj: Any) -> bool:
    """Whether the framing must read ``obj`` as a request (when its text is JSON we accept)."""
    if not isinstance(obj, dict):
        return False
    params = obj.get("params")
    return (
        obj.get("jsonrpc") == "2.0"
        and isinstance(obj.get("method"), str)
        and (params is None or isinstance(params, dict))
        and "result" not in obj
        and "error" not in obj
    )


def _only_clean_text(obj: Any) -> bool:
    """No lone surrogate, no spliced token, no nesting past the limit: text the decoder accepts."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=True)
    if "\\u0000RAW:" in text or "NaN" in text or "Infinity" in text:
        return False
    if re.search("[\ud800-\udfff]", text):
        return False
    return _depth(obj) <= 128


def _depth(obj: Any) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


@st.composite
def shaped(draw: st.DrawFn, ids: Ids, tools: tuple[str, ...] = (), batches: bool = False) -> Sent:
    """One JSON-RPC-shaped input (a batch of them when ``batches``)."""
    ensure_ascii = draw(st.booleans())
    if batches and draw(st.integers(0, 3)) == 0:
        items = draw(st.lists(message_object(ids, tools), max_size=4))
        body = [obj for obj, _ in items]
        data = dumps(body, ensure_ascii=ensure_ascii)
        clean = _only_clean_text(body)
        answered = tuple(i for obj, i in items if i is not None and clean and _well_formed_request(obj))
        return Sent(data, answered, batch=True)
    obj, request_id = draw(message_object(ids, tools))
    data = dumps(obj, ensure_ascii=ensure_ascii)
    must = request_id is not None and _only_clean_text(obj) and _well_formed_request(obj)
    return Sent(data, (request_id,) if must else ())


@st.composite
def raw_bytes(draw: st.DrawFn, ids: Ids) -> Sent:
    """Junk, or a valid request cut short, with a byte changed or with bytes inserted."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return Sent(draw(st.binary(min_size=1, max_size=200)))
    request_id = ids.next(draw(st.booleans()))
    good = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}).encode()
    if choice == 1:
        return Sent(good[: draw(st.integers(1, len(good) - 1))])
    at = draw(st.integers(0, len(good) - 1))
    if choice == 2:
        return Sent(good[:at] + bytes([draw(st.integers(0, 255))]) + good[at + 1 :])
    return Sent(good[:at] + draw(st.binary(min_size=1, max_size=8)) + good[at:])


def strict_json(data: bytes) -> Any:
    """Read what the server sent as a strict peer would: UTF-8, no NaN / Infinity."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} on the wire: {data[:200]!r}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def check_message(message: Any) -> None:
    """One JSON-RPC 2.0 message as a server may send it."""
    assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", message
    if "method" in message:
        assert isinstance(message["method"], str), message
        return
    assert "id" in message and (("result" in message) != ("error" in message)), message
    if "error" in message:
        error = message["error"]
        assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), message
        assert -32768 <= error["code"] <= -32000 or error["code"] > 0, message


def finals(messages: Iterable[Any]) -> Iterator[Any]:
    """The final answers among server messages (results and errors, batch arrays opened)."""
    for message in messages:
        for item in message if isinstance(message, list) else [message]:
            check_message(item)
            if "method" not in item:
                yield item


def check_answers(sent: Iterable[Sent], messages: list[Any]) -> None:
    """Every request with a readable id got exactly one final answer."""
    counts: dict[Any, int] = {}
    for answer in finals(messages):
        counts[answer.get("id")] = counts.get(answer.get("id"), 0) + 1
    for item in sent:
        for request_id in item.answered:
            assert counts.get(request_id) == 1, (request_id, counts.get(request_id), item.data[:300])
