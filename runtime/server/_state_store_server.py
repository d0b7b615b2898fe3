"""StateStoreServer: the one actor that owns the SessionStateStore backend.

Every session value a handler reads or writes, and every session's negotiated settings, travel as a
message to this actor; nothing else touches the backend. One owner means one place to count, trace,
throttle or swap the backend, and a backend failure surfaces as an error for the request that caused
it, never as a crash of the session that asked (a failed operation is replied as ``StoreFailed`` and
re-raised in the caller, so the StateStoreServer itself keeps running).
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
from mcpvisor.backends import SessionStateStore

from ..actors import ActorExited, Caller, Registry
from ._session_label import session_label

logger = logging.getLogger("mcpvisor.runtime.server")

#: The registry name of the StateStoreServer (one per running server, in that server's registry).
STATE_STORE_NAME = "state_store"


@attrs.frozen
class Load:
    session_id: str
    key: str


@attrs.frozen
class Store:
    session_id: str
    key: str
    value: bytes
    ttl: float | None = None


@attrs.frozen
class Delete:
    session_id: str
    key: str


@attrs.frozen
class Keys:
    session_id: str


@attrs.frozen
class DropSession:
    session_id: str


@attrs.frozen
class Expire:
    pass


StoreOp = Load | Store | Delete | Keys | DropSession | Expire


@attrs.frozen
class StoreFailed:
    """The backend raised: the caller re-raises ``error``; the actor lives on."""

    error: BaseException


class StateStoreUnavailable(RuntimeError):
    """The StateStoreServer is not running (it is being restarted, or the server is stopping)."""


class StateStoreServer:
    """Behaviour: run one backend operation per call, in mailbox order.

    ``operations`` counts the calls handled (tests use it to prove that state goes through here).
    """

    def __init__(self, store: SessionStateStore) -> None:
        self.store = store

    async def handle_call(self, msg: StoreOp, _caller: Caller) -> Any:
        store = self.store
        try:
            if type(msg) is Load:
                return await store.get(msg.session_id, msg.key)
            if type(msg) is Store:
                await store.put(msg.session_id, msg.key, msg.value, ttl=msg.ttl)
                return None
            if type(msg) is Delete:
                return await store.delete(msg.session_id, msg.key)
            if type(msg) is Keys:
                return await store.keys(msg.session_id)
            if type(msg) is DropSession:
                await store.drop_session(msg.session_id)
                return None
            if type(msg) is Expire:
                return await store.expire()
        except Exception as exc:
            # Not the message itself: it holds the session id (a bearer secret) and the value.
            sid = getattr(msg, "session_id", None)
            whose = "" if sid is None else f" for session {session_label(sid)}"
            logger.warning("session store %s%s failed: %r", type(msg).__name__, whose, exc)
            return StoreFailed(exc)
        raise TypeError(f"StateStoreServer got an unknown message {msg!r}")


class StateStoreClient:
    """What sessions and request environments hold: typed calls to the StateStoreServer by name.

    Looks the actor up in the server's registry on every call, so it follows the actor across restarts.
    ``operations`` counts the calls made through this client.
    """

    def __init__(self, registry: Registry, *, timeout: float | None = 30.0) -> None:
        self._registry = registry
        self._timeout = timeout
        self.operations = 0

    async def _call(self, msg: StoreOp) -> Any:
        ref = self._registry.whereis(STATE_STORE_NAME)
        if ref is None:
            raise StateStoreUnavailable("the session state store is not running (restarting or stopped)")
        self.operations += 1
        try:
            reply = await ref.call(msg, timeout=self._timeout)
        except ActorExited as exc:
            raise StateStoreUnavailable(f"the session state store exited: {exc.reason!r}") from exc
        if type(reply) is StoreFailed:
            raise reply.error
        return reply

    async def get(self, session_id: str, key: str) -> bytes | None:
        value: bytes | None = await self._call(Load(session_id, key))
        return value

    async def put(self, session_id: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._call(Store(session_id, key, value, ttl))

    async def delete(self, session_id: str, key: str) -> bool:
        removed: bool = await self._call(Delete(session_id, key))
        return removed

    async def keys(self, session_id: str) -> list[str]:
        keys: list[str] = await self._call(Keys(session_id))
        return keys

    async def drop_session(self, session_id: str) -> None:
        await self._call(DropSession(session_id))

    async def expire(self) -> int:
        removed: int = await self._call(Expire())
        return removed
