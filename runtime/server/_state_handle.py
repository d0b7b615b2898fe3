"""``StateHandle``: what a 2026-07-28 client carries instead of a session (SEP-2567), and its record.

The 2026-07-28 revision has no session. State that must span several tool calls lives behind a
server-minted handle that the model passes back as an ordinary tool argument. A handle is a capability:
whoever holds it reaches its values, so it is

- unguessable: ``sh_`` and 32 URL-safe characters from ``secrets`` (192 random bits; SEP-2567 asks for
  at least 128);
- checked for shape before anything else (the input schema carries the pattern, and binding refuses a
  string the server cannot have minted, with no store round trip);
- bound to its owner, recorded at minting (the principal when the server authenticates, else the
  client's name) and compared on every use;
- bounded in time: a ``ttl`` from minting, after which it is refused as expired and its values dropped.

The record lives in the SessionStateStore under a reserved key of the handle's own id, next to the
handle's values, so a restarted process or another node on the same store finds both.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from typing import Any, ClassVar, Final

import attrs
from mcpvisor.backends import decode, encode

from ._errors import ToolError
from ._reserved_keys import RESERVED_PREFIX

#: Every handle starts with this (a reader of a log sees what it is; the rest is random).
HANDLE_PREFIX: Final = "sh_"
#: ``secrets.token_urlsafe(24)``: 24 random bytes, 32 characters.
_RANDOM_BYTES: Final = 24
_SHAPE: Final = re.compile(r"sh_[A-Za-z0-9_-]{32}")
#: Where a handle's record lives, among its values.
HANDLE_KEY: Final = RESERVED_PREFIX + "handle"


class StateHandle(str):
    """A state handle: annotate a tool parameter with it to take one (``handle: StateHandle``).

    The tool's input schema then shows a string with the handles' pattern and a description, the
    argument is refused unless it has the shape of a minted handle, and before the tool runs the
    handle is checked (live, not expired, presented by its owner), after which ``ctx.get_state`` /
    ``set_state`` / ``delete_state`` act on its values. Mint one with ``ctx.open_handle()``.
    """

    __slots__ = ()

    __json_schema__: ClassVar[dict[str, Any]] = {
        "type": "string",
        "pattern": "^sh_[A-Za-z0-9_-]{32}$",
        "description": "A state handle (sh_...) that an earlier call of this server returned; pass it as is.",
    }

    @classmethod
    def __from_json__(cls, value: Any) -> StateHandle:
        if not isinstance(value, str):
            raise TypeError(
                f"expected a state handle (a string starting with {HANDLE_PREFIX}), got {value!r}"
            )
        if not _SHAPE.fullmatch(value):
            shown = value if len(value) <= 48 else value[:45] + "..."
            raise ValueError(
                f"{shown!r} is not a state handle this server minted (those are {HANDLE_PREFIX} followed by "
                "32 letters, digits, '-' or '_'): pass back exactly the handle a tool returned"
            )
        return cls(value)

    @classmethod
    def mint(cls) -> StateHandle:
        return cls(HANDLE_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES))


def handle_label(handle: str) -> str:
    """How a handle appears in logs and supervision events: ``h:`` and 12 hex digits of a BLAKE2b hash.

    A handle is a bearer secret where no owner is recorded, and logs travel further than clients, so
    they never show it: the label is the same on every node and run (an operator who has the handle can
    compute it and find its lines) but cannot be turned back into the handle.
    """
    digest = hashlib.blake2b(handle.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return f"h:{digest}"


def is_handle_shape(value: str) -> bool:
    return _SHAPE.fullmatch(value) is not None


class HandleRefused(ToolError):
    """A handle the request may not use (unknown, closed, expired, someone else's): a tool error, so the
    model reads why and can open a new one."""


@attrs.frozen
class HandleRecord:
    """What is stored about a handle besides its values. ``expires_at`` is wall-clock (``time.time()``)
    seconds, so every process reads the same deadline; ``math.inf`` for a handle that does not expire."""

    owner: str | None
    expires_at: float
    idle_timeout: float

    def to_bytes(self) -> bytes:
        # A plain map, not a registered attrs class: an older or newer process can still read it.
        expires = None if math.isinf(self.expires_at) else self.expires_at
        return encode({"owner": self.owner, "expires_at": expires, "idle_timeout": self.idle_timeout})

    @classmethod
    def from_bytes(cls, data: bytes) -> HandleRecord:
        raw = decode(data)
        expires = raw.get("expires_at")
        owner = raw.get("owner")
        return cls(
            owner=owner if isinstance(owner, str) else None,
            expires_at=math.inf if expires is None else float(expires),
            idle_timeout=float(raw.get("idle_timeout") or math.inf),
        )


# ---- the refusals (each says what happened and what to do) -----------------------------------------


def unknown_handle(handle: str) -> HandleRefused:
    return HandleRefused(
        f"state handle {handle} is unknown, closed or expired: its values are gone. "
        "Call the tool that opens one again and use the new handle."
    )


def expired_handle(handle: str) -> HandleRefused:
    return HandleRefused(
        f"state handle {handle} has expired (its lifetime ended) and its values were dropped. "
        "Call the tool that opens one again and use the new handle."
    )


def foreign_handle(handle: str) -> HandleRefused:
    return HandleRefused(
        f"state handle {handle} belongs to another client and cannot be used by this one. "
        "Open your own handle with the tool that opens one."
    )
