"""Which protocol eras a running server answers: both (the default), or one only.

``protocol="2025-11-25"`` serves the handshake era alone (sessions; 2025-11-25 and the older revisions
``initialize`` negotiates down to): a 2026-07-28 request is answered -32022 naming those revisions, which
makes the official client fall back to ``initialize``. ``protocol="2026-07-28"`` serves the stateless
era alone (state through handles): ``initialize`` is answered -32022 naming 2026-07-28.
"""

from __future__ import annotations

from typing import Final

from ..protocol import HANDSHAKE_VERSIONS, STATELESS_VERSIONS

#: What ``protocol=`` (and ``mcpvisor ... --protocol``) accepts; "all" is the same as None.
PROTOCOL_CHOICES: Final = ("all", HANDSHAKE_VERSIONS[0], STATELESS_VERSIONS[0])


def check_protocol(protocol: str | None) -> str | None:
    """None (both eras) or the one era's revision; ValueError for anything else."""
    if protocol is None or protocol == "all":
        return None
    if protocol not in PROTOCOL_CHOICES:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOL_CHOICES)} (or None), not {protocol!r}")
    return protocol


def serves_handshake(protocol: str | None) -> bool:
    return protocol is None or protocol == HANDSHAKE_VERSIONS[0]


def serves_stateless(protocol: str | None) -> bool:
    return protocol is None or protocol == STATELESS_VERSIONS[0]
