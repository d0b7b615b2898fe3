"""Who may talk to the endpoint, and in which media type: Origin / Host allow-lists and `Accept`.

DNS rebinding is the attack: a web page on `evil.example` re-resolves its own name to 127.0.0.1 and
then talks to a local MCP server from the user's browser. The browser sends `Origin: http://evil.example`
and `Host: evil.example:PORT`, so refusing both (403) unless they name the loopback interface closes the
hole. Requests without an `Origin` (every non-browser client) pass the origin check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

LOOPBACK_HOSTS: Final[tuple[str, ...]] = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_ALLOWED_HOSTS: Final[tuple[str, ...]] = LOOPBACK_HOSTS
DEFAULT_ALLOWED_ORIGINS: Final[tuple[str, ...]] = tuple(
    f"{scheme}://{host}" for scheme in ("http", "https") for host in LOOPBACK_HOSTS
)

JSON: Final = "application/json"
SSE: Final = "text/event-stream"


def _split_host(authority: str) -> tuple[str, str | None]:
    """`host[:port]` -> (lower-case host, port or None); IPv6 literals keep their brackets."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            return authority, None
        host, rest = authority[: end + 1], authority[end + 1 :]
        return host, rest[1:] if rest.startswith(":") else None
    host, sep, port = authority.partition(":")
    return host, port if sep else None


def _split_origin(origin: str) -> tuple[str, str, str | None] | None:
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or not rest or "/" in rest:
        return None
    host, port = _split_host(rest)
    return scheme, host, port


@attrs.frozen
class AllowList:
    """Host or origin patterns. An entry without a port matches any port; `"*"` matches everything."""

    entries: tuple[str, ...]

    @classmethod
    def of(cls, entries: Sequence[str] | None, default: tuple[str, ...]) -> AllowList:
        if isinstance(entries, str):
            raise TypeError("pass a sequence of strings, not one string")
        return cls(default if entries is None else tuple(entries))

    @property
    def allows_all(self) -> bool:
        return "*" in self.entries

    def allows_host(self, value: str) -> bool:
        if self.allows_all:
            return True
        host, port = _split_host(value)
        for entry in self.entries:
            want_host, want_port = _split_host(entry)
            if want_host == host and (want_port in (None, "*") or want_port == port):
                return True
        return False

    def allows_origin(self, value: str) -> bool:
        if self.allows_all:
            return True
        got = _split_origin(value)
        if got is None:
            return False
        for entry in self.entries:
            want = _split_origin(entry)
            if want is not None and want[:2] == got[:2] and (want[2] in (None, "*") or want[2] == got[2]):
                return True
        return False


def accepted_types(accept: str | None) -> frozenset[str]:
    """The media types an `Accept` header lists (parameters and q-values ignored; q=0 excluded).

    No header means "anything" (RFC 9110), which we report as `*/*`.
    """
    if accept is None:
        return frozenset({"*/*"})
    out: set[str] = set()
    for part in accept.split(","):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        if not media:
            continue
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        out.add(media)
    return frozenset(out)


def accepts(types: frozenset[str], media: str) -> bool:
    major = media.split("/", 1)[0]
    return media in types or "*/*" in types or f"{major}/*" in types
