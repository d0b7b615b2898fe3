"""JSON text as the wire carries it: UTF-8, finite numbers, bounded nesting, valid Unicode strings.

Python's `json` module is more lenient than JSON (RFC 8259) and than the peers we talk to: it reads
``NaN`` / ``Infinity``, turns ``1e999`` into an infinite float, lets ``"\\ud800"`` (half of a surrogate
pair) into a `str` that cannot be encoded back to UTF-8, and raises `RecursionError`, not `ValueError`,
on deep nesting. Each of those once escaped the transports and killed a stdio server (issue 7). This
module is the one place that reads and writes JSON text for JSON-RPC, with one rule:

- **in**, anything that is not strict JSON text of valid Unicode is refused (`NotJsonText`, which the
  framing answers with -32700): the server cannot guess what the peer meant;
- **out**, a lone surrogate the server produced (an LLM's output, say) is replaced by U+FFFD, the way a
  browser's ``TextEncoder`` does, so the answer still goes out; a value with no JSON form at all (NaN,
  infinities, a `bytes` or any other object, nesting too deep) raises, and the framing decides what is
  sent instead (see `_jsonrpc.encode`).
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterable
from itertools import accumulate
from typing import Final

MAX_DEPTH: Final = 128
"""The deepest nesting of arrays and objects read (the message object counts as one level).

serde_json's default; Python's decoder would fail near 1,000 levels, somewhere that depends on how deep
the caller's stack already is, so a fixed, lower limit keeps the answer the same everywhere.
"""


class NotJsonText(ValueError):
    """The payload is not JSON text we accept; ``obj`` is what it read as, when it did read (so an id
    can still be answered), else None."""

    def __init__(self, reason: str, obj: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.obj = obj


# A JSON string (removed before counting brackets, so brackets inside one do not count).
_STRING: Final = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]++")
_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}
# Every byte but the four brackets (UTF-8 never uses ASCII bytes inside a multi-byte character).
_NOT_BRACKET_BYTES: Final = bytes(b for b in range(256) if b not in b"[]{}")
_BYTE_STEP: Final = [0] * 256
_BYTE_STEP[ord("[")] = _BYTE_STEP[ord("{")] = 1
_BYTE_STEP[ord("]")] = _BYTE_STEP[ord("}")] = -1
# A \u escape that may produce half of a surrogate pair (a false alarm on an escaped backslash is fine).
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a code point UTF-8 cannot encode (a surrogate: `json` joins valid pairs)."""
    return _SURROGATE.search(text) is not None


def _deepest(steps: Iterable[int]) -> int:
    return max(accumulate(steps), default=0)


def _too_deep(data: bytes, text: str) -> bool:
    """Whether arrays and objects nest deeper than `MAX_DEPTH`. Regex, translate, map, accumulate and
    max all run in C: no Python-level loop per character."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:  # the common case: no scan at all
        return False
    # Brackets inside strings count here, so this bound is never below the true depth ...
    if _deepest(map(_BYTE_STEP.__getitem__, data.translate(None, _NOT_BRACKET_BYTES))) <= MAX_DEPTH:
        return False
    # ... and only past it are the strings taken out, which costs about as much as parsing.
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return _deepest(map(_STEP.__getitem__, brackets)) > MAX_DEPTH


def _holds_lone_surrogate(obj: object) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NotFinite(name)


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e999 and friends: Python reads them as infinity
        raise _NotFinite(literal)
    return value


_STRICT: Final = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)
"""One decoder for every message: ``json.loads`` with hooks would build a new one per call."""


def loads(data: bytes | str) -> object:
    """Read one JSON text; raises `NotJsonText` (or another `ValueError` for plain bad JSON)."""
    if isinstance(data, str):  # a str may hold surrogates already (an in-process peer)
        text, raw, given_text = data, data.encode("utf-8", "surrogatepass"), True
    else:
        raw = bytes(data)
        if raw.startswith(codecs.BOM_UTF8):  # RFC 8259 lets a reader ignore it; json.loads(bytes) did
            raw = raw[len(codecs.BOM_UTF8) :]
        text, given_text = raw.decode("utf-8"), False  # strict: surrogate bytes are not UTF-8
    if _too_deep(raw, text):
        raise NotJsonText(f"nested deeper than {MAX_DEPTH} levels")
    try:
        obj = _STRICT.decode(text)
    except _NotFinite as exc:
        # Read it again leniently (a rare path) only to find the id to answer.
        reason = f"{exc} is not a JSON number (JSON has no NaN or Infinity)"
        raise NotJsonText(reason, json.loads(text)) from None
    except RecursionError:  # not reachable past _too_deep, but never let it out
        raise NotJsonText("nested too deep") from None
    suspect = _SURROGATE_ESCAPE.search(text) is not None or (given_text and has_lone_surrogate(text))
    if suspect and _holds_lone_surrogate(obj):
        raise NotJsonText(
            "a string holds a lone surrogate (such as \\ud800), which is not valid Unicode", obj
        )
    return obj


def _scrub(text: str) -> str:
    """Join surrogate pairs built by hand and replace lone surrogates with U+FFFD."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def dumps(body: object) -> bytes:
    """Compact UTF-8 JSON for ``body``; lone surrogates become U+FFFD.

    Raises ValueError (NaN, infinities, a circular reference), TypeError (a value JSON has no form for)
    or RecursionError (nesting too deep to write): the caller decides what goes out instead.
    """
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _scrub(text).encode("utf-8")


def why_not_json(exc: BaseException) -> str:
    """What `dumps` refused, in words fit for a peer (no values, no paths)."""
    if isinstance(exc, RecursionError):
        return "nesting too deep to write as JSON"
    if isinstance(exc, TypeError):
        kind = re.search(r"type (\w+)", str(exc))
        return f"a value of type {kind.group(1) if kind else 'unknown'}, which JSON cannot carry"
    if "ircular" in str(exc):
        return "a circular reference, which JSON cannot carry"
    return "a NaN or infinite number, which JSON cannot carry"
