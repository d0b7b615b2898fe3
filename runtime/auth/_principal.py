"""`Principal`: who an authenticated request comes from, as the token verifier established it.

It is what a tool sees (``ctx.principal``) and what the runtime binds sessions, state handles and
tasks to. Two tokens name the same principal when they carry the same issuer and subject, so a client
that refreshes its token keeps its session; a token of another user (or of the same user from another
issuer) is another principal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs


def _frozen_scopes(scopes: Any) -> frozenset[str]:
    return frozenset(str(scope) for scope in scopes)


@attrs.frozen
class Principal:
    """The verified identity behind a bearer token.

    ``subject`` is the token's ``sub`` (for a client-credentials token, often the client itself);
    ``client_id`` the OAuth client that obtained it (``client_id`` / ``azp``); ``issuer`` the
    authorization server (``iss``); ``scopes`` what it grants; ``claims`` every claim as verified
    (read-only); ``expires_at`` its ``exp`` (seconds since the epoch) when it has one.
    """

    subject: str
    issuer: str | None = None
    client_id: str | None = None
    scopes: frozenset[str] = attrs.field(factory=frozenset, converter=_frozen_scopes)
    claims: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    expires_at: float | None = None

    @property
    def key(self) -> str:
        """What ownership compares: issuer and subject, hashed (it reaches stored records, and a
        subject may be an e-mail address that has no business in a store dump or a log)."""
        raw = f"{self.issuer or ''}\x00{self.subject}".encode("utf-8", "surrogatepass")
        return hashlib.blake2b(raw, digest_size=16).hexdigest()

    def has_scopes(self, required: Any) -> bool:
        """True when every scope in ``required`` is granted."""
        return _frozen_scopes(required) <= self.scopes

    def missing_scopes(self, required: Any) -> list[str]:
        """The scopes of ``required`` this principal lacks, sorted (empty when it has them all)."""
        return sorted(_frozen_scopes(required) - self.scopes)
