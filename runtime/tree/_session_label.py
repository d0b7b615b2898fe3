"""How a session id appears in logs: a short, stable hash, never the id itself.

A session id is a bearer secret: whoever holds it can use and end the session. Logs are read by more
people than the clients, and shipped to more places, so they show ``session_label(id)`` instead: the
first 12 hex digits of a BLAKE2b hash of the id. It is the same on every node and every run, so an
operator who knows a session's id can compute its label and find its lines, but a label cannot be
turned back into an id.
"""

from __future__ import annotations

import hashlib


def session_label(session_id: str) -> str:
    """``s:`` and 12 hex digits (48 bits: collisions among a server's sessions are not a concern)."""
    digest = hashlib.blake2b(session_id.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return f"s:{digest}"
