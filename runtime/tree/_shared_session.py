"""A session on a shared state store (SQLite, Redis): every node may serve it, none of them owns it.

On a shared store a node's actor for a session is a cache of the stored session, not its owner: a
load balancer may send the session's next request to any node, which resumes it from the store. Two
decisions follow (issue 11: both were data-loss bugs while a node treated its actor as the owner):

- **Idle is node-local.** A node that has not served a session for its idle lifetime stops its own
  actor and keeps the stored values and settings, which another node may be using (exactly as a
  state handle's actor stops when unused, ``_handle_table``). The session ends *everywhere* when its
  settings record expires in the store: the record is written with a TTL of the idle lifetime plus
  ``_GRACE`` of it, and every node refreshes it while serving the session (at most once per
  ``_GRACE`` of the lifetime), so a session nobody uses ends between 1 and 1.1 lifetimes after its
  last request on any node. Its values follow on their own TTL.
- **DELETE is global.** The node that closes the session drops its values and replaces its settings
  record with a *tombstone*, which lives as long as values do by default (the store's default TTL), so
  it expires too. Before serving a request, a node reads the record (one store read per request, only
  on a shared store): a tombstone or no record means the session ended, and the node ends its own
  actor and answers 404, as every other node does. Every write of the record (a settings change, a
  refresh) is an ``update`` that refuses to write over a tombstone or an absent record, so a node that
  has not yet noticed the end cannot bring the session back.
"""

from __future__ import annotations

import math
from typing import Any, Final

from mcpvisor.backends import decode, encode

from ._session_settings import SETTINGS_KEY
from ._session_slot import SessionSlot
from ._state_store_server import StateStoreClient

#: The settings record outlives the idle lifetime by this fraction of it; a node serving the session
#: refreshes the record at most this often (as a fraction of the lifetime).
_GRACE: Final = 0.1
#: How often a session with no idle lifetime (``math.inf``) has its record refreshed.
_FOREVER_REFRESH: Final = 3600.0
#: The field that makes a settings record a tombstone (a plain msgpack map, like the settings).
_ENDED: Final = "ended"
#: The settings record's field of resource subscriptions (``SessionSettings.to_bytes``).
_SUBSCRIPTIONS: Final = "subscriptions"


class SessionEnded(Exception):
    """The session ended on another node (DELETE) or expired in the store: it is gone everywhere."""


def record_ttl(idle_timeout: float) -> float | None:
    """The TTL of a session's settings record on a shared store (None: the store's default)."""
    return None if math.isinf(idle_timeout) else idle_timeout * (1 + _GRACE)


def refresh_interval(idle_timeout: float) -> float:
    return _FOREVER_REFRESH if math.isinf(idle_timeout) else idle_timeout * _GRACE


def tombstone(reason: str) -> bytes:
    return encode({_ENDED: reason})


def is_live(data: bytes | None) -> bool:
    """Whether a stored settings record says the session lives (not absent, not a tombstone)."""
    return data is not None and _live_map(decode(data))


def _live_map(raw: Any) -> bool:
    return isinstance(raw, dict) and _ENDED not in raw


def _still_live(old: Any) -> Any:
    """``update``'s function for a refresh: the record as it is, unless the session ended."""
    if not _live_map(old):
        raise SessionEnded("the session ended on another node or expired")
    return old


class _Change:
    """``update``'s function for a settings change: the *stored* record with this one change applied,
    unless the session ended.

    Two nodes may serve the session at once, each with its own copy of the settings; a copy may be
    older than the record (a subscription made through the other node). So a change never writes a
    node's whole copy: it sets the fields it changes (a log level) and adds or removes its one
    subscription in the stored list, and the conditional update retries it on a concurrent write.
    """

    def __init__(
        self, fields: dict[str, Any], subscribe: str | None = None, unsubscribe: str | None = None
    ) -> None:
        self.fields = fields
        self.subscribe = subscribe
        self.unsubscribe = unsubscribe

    def __call__(self, old: Any) -> Any:
        _still_live(old)
        subs = [uri for uri in old.get(_SUBSCRIPTIONS) or [] if uri != self.unsubscribe]
        if self.subscribe is not None and self.subscribe not in subs:
            subs.append(self.subscribe)
        return {**old, **self.fields, _SUBSCRIPTIONS: subs}


async def write_settings(store: StateStoreClient, slot: SessionSlot, data: bytes) -> None:
    """Store a shared session's settings record at ``initialize``; its TTL starts."""
    await store.put(slot.session_id, SETTINGS_KEY, data, ttl=record_ttl(slot.idle_timeout))


async def change_settings(
    store: StateStoreClient,
    slot: SessionSlot,
    *,
    fields: dict[str, Any] | None = None,
    subscribe: str | None = None,
    unsubscribe: str | None = None,
) -> None:
    """Apply one change to a shared session's stored settings, only over a live record
    (``SessionEnded`` if it is gone); its TTL starts afresh."""
    change = _Change(fields or {}, subscribe, unsubscribe)
    await store.update(slot.session_id, SETTINGS_KEY, change, ttl=record_ttl(slot.idle_timeout))


async def check_live(store: StateStoreClient, slot: SessionSlot, now: float) -> None:
    """Before a request: ``SessionEnded`` unless the stored record still says the session lives.

    One read; when the record is due for a refresh, one update instead (a read and a conditional
    write), which moves its expiry while keeping its content."""
    if now - slot.record_written >= refresh_interval(slot.idle_timeout):
        await store.update(slot.session_id, SETTINGS_KEY, _still_live, ttl=record_ttl(slot.idle_timeout))
        slot.record_written = now
    elif not is_live(await store.get(slot.session_id, SETTINGS_KEY)):
        raise SessionEnded("the session ended on another node or expired")
