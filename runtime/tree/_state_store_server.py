"""StateStoreServer: the one actor that owns the SessionStateStore backend.

Every session value a handler reads or writes, and every session's negotiated settings, travel as a
message to this actor; nothing else touches the backend (but for the short cut below, which runs the
actor's own code for it while it is idle). One owner means one place to count, trace,
throttle or swap the backend, and a backend failure surfaces as an error for the request that caused
it, never as a crash of the session that asked (a failed operation is replied as ``StoreFailed`` and
re-raised in the caller, so the StateStoreServer itself keeps running).

**The short cut for the in-process store.** When the backend is the plain ``MemorySessionStore``
(whose reads and writes never wait) and this actor is parked on an empty mailbox, ``StateStoreClient``
runs a read or a write in the caller's task (``_run_now``, the same code and error handling as
``_run``) instead of sending it: the actor would run it next, in the same order and as atomically, and
the two trips through the scheduler are saved. The caller still checkpoints (cancelled: nothing applied;
then a schedule point). Every other operation, and every operation while the actor is busy, goes
through the mailbox.

**Atomic updates.** ``Update`` reads a value, calls the caller's sync function on it and writes the
result, all inside this actor's one ``handle_call``: no other operation of this server interleaves, so
``ctx.update_state`` never loses an update to a concurrent request of the same server. Across nodes
sharing a backend, a store with ``compare_and_set`` (all three shipped ones) makes the write
conditional on what was read, and a lost race is retried with the newer value (docs/server.md).

**Fencing: an error answer means "not applied".** Every operation travels inside a ``Fenced``
envelope carrying its caller's deadline. The actor runs an operation only if its caller still waits
and the deadline has not passed; one whose caller gave up (timed out, cancelled) while it sat in the
mailbox is dropped, never run later (the "phantom write" of a backend outage, issue 7). An operation
already running in the backend when the deadline passes cannot be taken back: its caller waits for
its outcome up to ``outcome_wait`` more seconds and then gets that outcome, so the answer and the
store agree; only if the backend has still not answered is the caller told ``StateStoreOutcomeUnknown``
(the write may or may not land), never a plain failure.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from typing import Any

import attrs
import trio
from mcpvisor.backends import BackendOutcomeUnknown, MemorySessionStore, SessionStateStore, decode, encode

from ..actors import ActorExited, Caller, CallTimeout, Registry
from ..server._state_errors import StateStoreConflict as StateStoreConflict
from ..server._state_errors import StateStoreOutcomeUnknown as StateStoreOutcomeUnknown
from ..server._state_errors import StateStoreTimeout as StateStoreTimeout
from ..server._state_errors import StateStoreUnavailable as StateStoreUnavailable
from ._session_label import session_label

logger = logging.getLogger("mcpvisor.runtime.tree")

#: The registry name of the StateStoreServer (one per running server, in that server's registry).
STATE_STORE_NAME = "state_store"

#: Seconds a state operation may wait to start (mailbox and queue), by default.
DEFAULT_STORE_TIMEOUT = 30.0
#: Seconds a caller waits, past its deadline, for an operation already running in the backend.
DEFAULT_OUTCOME_WAIT = 15.0
#: Reads and conditional writes an update tries before giving up on a key other nodes keep changing.
_CAS_ATTEMPTS = 64


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
class Update:
    """Read ``key`` (``default`` if absent), store ``fn(old)`` through the codec, reply the new value."""

    session_id: str
    key: str
    fn: Callable[[Any], Any]
    default: Any = None
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


StoreOp = Load | Store | Update | Delete | Keys | DropSession | Expire


@attrs.frozen
class StoreFailed:
    """The backend raised: the caller re-raises ``error``; the actor lives on."""

    error: BaseException


@attrs.define(eq=False, slots=True)
class Fenced:
    """One operation and its caller's deadline (trio time), with what the actor did with it.

    ``started`` is set, synchronously after the checks, when the actor hands the operation to the
    backend; ``finished``/``reply`` when the backend is done. A caller whose ``call`` timed out reads
    them to tell "never run" from "running", and parks on ``waiter`` for the outcome of the latter.
    """

    op: StoreOp
    deadline: float
    started: bool = False
    finished: bool = False
    reply: Any = None
    waiter: trio.Event | None = None

    def finish(self, reply: Any) -> None:
        self.finished = True
        self.reply = reply
        if self.waiter is not None:
            self.waiter.set()


class StateStoreServer:
    """Behaviour: run one backend operation per call, in mailbox order.

    ``skipped`` counts the operations dropped because their caller had given up before they started.
    """

    def __init__(self, store: SessionStateStore) -> None:
        self.store = store
        self.skipped = 0

    async def handle_call(self, msg: Fenced | StoreOp, caller: Caller) -> Any:
        if type(msg) is not Fenced:
            return await self._run(msg)  # type: ignore[arg-type]
        # The fence: both checks and ``started`` happen with no checkpoint in between, so a caller
        # cannot time out between "checked" and "started" unseen.
        if not caller.waiting:
            self.skipped += 1
            return None  # nobody to answer, and nothing done: the caller was told "not applied"
        if trio.current_time() >= msg.deadline:
            self.skipped += 1
            return StoreFailed(_not_started(msg.op, None))
        msg.started = True
        reply = await self._run(msg.op)
        msg.finish(reply)
        return reply

    async def _run(self, msg: StoreOp) -> Any:
        store = self.store
        try:
            if type(msg) is Load:
                return await store.get(msg.session_id, msg.key)
            if type(msg) is Store:
                await store.put(msg.session_id, msg.key, msg.value, ttl=msg.ttl)
                return None
            if type(msg) is Update:
                return await self._update(msg)
            if type(msg) is Delete:
                return await store.delete(msg.session_id, msg.key)
            if type(msg) is Keys:
                return await store.keys(msg.session_id)
            if type(msg) is DropSession:
                await store.drop_session(msg.session_id)
                return None
            if type(msg) is Expire:
                return await store.expire()
        except _FnFailed as failed:
            return StoreFailed(failed.error)  # the user's function or value: theirs to handle, not ours
        except BackendOutcomeUnknown as exc:
            logger.warning("session store operation %r: outcome unknown: %r", _describe(msg), exc)
            unknown = StateStoreOutcomeUnknown(
                f"the session state store's backend did not confirm {_describe(msg)}: it may or may not "
                f"have been applied ({exc}). Read the value back before relying on it"
            )
            unknown.__cause__ = exc
            return StoreFailed(unknown)
        except Exception as exc:
            return _failed(msg, exc)
        raise TypeError(f"StateStoreServer got an unknown message {msg!r}")

    async def _update(self, msg: Update) -> Any:
        """Read, apply, write. This actor serialises the server's own updates; a store with
        ``compare_and_set`` also makes the write conditional on the bytes read, so an update by
        another node in between is noticed and the function re-applied to the newer value."""
        store = self.store
        cas = getattr(store, "compare_and_set", None)
        for _attempt in range(_CAS_ATTEMPTS):
            data = await store.get(msg.session_id, msg.key)
            old = msg.default if data is None else decode(data)
            try:
                new = _apply(msg, old)
                blob = encode(new, key=msg.key)
            except Exception as exc:
                raise _FnFailed(exc) from exc
            if cas is None:
                await store.put(msg.session_id, msg.key, blob, ttl=msg.ttl)
                return new
            if await cas(msg.session_id, msg.key, data, blob, ttl=msg.ttl):
                return new
        raise StateStoreConflict(
            f"update_state({msg.key!r}): other nodes changed the value between every read and write, "
            f"{_CAS_ATTEMPTS} times in a row; nothing was written"
        )


def _failed(msg: StoreOp, exc: Exception) -> StoreFailed:
    # Not the message itself: it holds the session id (a bearer secret) and the value.
    sid = getattr(msg, "session_id", None)
    whose = "" if sid is None else f" for session {session_label(sid)}"
    logger.warning("session store %s%s failed: %r", _describe(msg), whose, exc)
    return StoreFailed(exc)


def _sync_store(store: SessionStateStore | None) -> MemorySessionStore | None:
    """``store`` if its reads, writes and session drops can run without waiting: a ``MemorySessionStore``
    whose ``get``, ``put`` and ``drop_session`` are its own (a subclass that overrides them, to slow or
    fail them, is not one); else None."""
    if not isinstance(store, MemorySessionStore):
        return None
    kind = type(store)
    own = (
        kind.get is MemorySessionStore.get
        and kind.put is MemorySessionStore.put
        and kind.drop_session is MemorySessionStore.drop_session
    )
    return store if own else None


def _run_now(store: MemorySessionStore, op: Load | Store | DropSession) -> Any:
    """What the actor's ``_run`` does for a read, a write or a session drop, done here (see
    ``StateStoreClient._call``)."""
    try:
        if type(op) is Load:
            return store.get_now(op.session_id, op.key)
        if type(op) is DropSession:
            store.drop_now(op.session_id)
            return None
        assert type(op) is Store
        store.put_now(op.session_id, op.key, op.value, ttl=op.ttl)
    except Exception as exc:
        return _failed(op, exc)
    return None


def _apply(msg: Update, old: Any) -> Any:
    new = msg.fn(old)
    if inspect.isawaitable(new):
        if inspect.iscoroutine(new):
            new.close()
        raise TypeError(
            f"update_state({msg.key!r}) needs a sync function: {msg.fn!r} returned an awaitable "
            "(the function runs inside the state store, where nothing may wait)"
        )
    return new


class _FnFailed(Exception):
    """An update's function raised, or its result cannot be encoded: nothing was written."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _describe(op: StoreOp) -> str:
    """What an operation did, for messages: never its value (a value may be a secret)."""
    if isinstance(op, Load | Store | Update | Delete):
        return f"{type(op).__name__.lower()} of {op.key!r}"
    return type(op).__name__.lower()


def _not_started(op: StoreOp, timeout: float | None) -> StateStoreTimeout:
    within = "before its deadline" if timeout is None else f"within {timeout:g}s"
    return StateStoreTimeout(
        f"the session state store did not start the {_describe(op)} {within} (its backend is slow or "
        "unreachable): it was not applied and never will be"
    )


class StateStoreClient:
    """What sessions and request environments hold: typed calls to the StateStoreServer by name.

    Looks the actor up in the server's registry on every call, so it follows the actor across restarts.
    ``timeout`` bounds how long an operation may wait to *start*; once started, the caller waits up to
    ``outcome_wait`` more seconds for the backend's answer (see the module docstring). ``operations``
    counts the calls made through this client.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        timeout: float | None = DEFAULT_STORE_TIMEOUT,
        outcome_wait: float = DEFAULT_OUTCOME_WAIT,
        store: SessionStateStore | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        if not outcome_wait >= 0:
            raise ValueError(f"outcome_wait must be >= 0 seconds, got {outcome_wait!r}")
        self._registry = registry
        self._timeout = timeout
        self._outcome_wait = outcome_wait
        #: The backend the actor owns, when reads and writes of it never wait (``_call``'s short cut).
        self._sync: MemorySessionStore | None = _sync_store(store)
        self.operations = 0

    async def _call(self, op: StoreOp, *, yield_after: bool = True) -> Any:
        """Run ``op`` through the actor. ``yield_after=False`` (the session actor's own settings write at
        initialize, never a request's) skips the yield that follows a short-cut operation: the caller
        is about to park or take its next message anyway, so the yield only cost a scheduler pass."""
        ref = self._registry.whereis(STATE_STORE_NAME)
        if ref is None:
            raise StateStoreUnavailable("the session state store is not running (restarting or stopped)")
        self.operations += 1
        sync = self._sync
        kind = type(op)
        if sync is not None and ref.idle and (kind is Load or kind is Store or kind is DropSession):
            # The actor is parked on an empty mailbox and this backend never waits: running the read or
            # write here is what the actor would do next, in the same order (nothing queued before it)
            # and as atomically (no checkpoint inside), without two trips through the scheduler. Still a
            # checkpoint: a cancelled caller gets nothing applied, and the caller yields after it.
            await trio.lowlevel.checkpoint_if_cancelled()
            reply = _run_now(sync, op)  # type: ignore[arg-type]
            if yield_after:
                await trio.lowlevel.cancel_shielded_checkpoint()
            if type(reply) is StoreFailed:
                raise reply.error
            return reply
        timeout = self._timeout
        fenced = Fenced(op, math.inf if timeout is None else trio.current_time() + timeout)
        try:
            reply = await ref.call(fenced, timeout=timeout)
        except CallTimeout:
            if not fenced.started:
                raise _not_started(op, timeout) from None
            reply = await self._outcome(fenced)
        except ActorExited as exc:
            if fenced.started and not fenced.finished:
                raise StateStoreOutcomeUnknown(
                    f"the session state store exited during the {_describe(op)} ({exc.reason!r}): it may "
                    "or may not have been applied"
                ) from exc
            raise StateStoreUnavailable(f"the session state store exited: {exc.reason!r}") from exc
        if type(reply) is StoreFailed:
            raise reply.error
        return reply

    async def _outcome(self, fenced: Fenced) -> Any:
        """The operation is running in the backend: wait (bounded) for what it did."""
        if not fenced.finished:
            fenced.waiter = trio.Event()
            with trio.move_on_after(self._outcome_wait):
                await fenced.waiter.wait()
        if not fenced.finished:
            raise StateStoreOutcomeUnknown(
                f"the session state store's backend has not finished the {_describe(fenced.op)} after "
                f"{self._timeout:g}s + {self._outcome_wait:g}s: it may or may not be applied. Read the "
                "value back before relying on it"
            )
        return fenced.reply

    async def get(self, session_id: str, key: str) -> bytes | None:
        value: bytes | None = await self._call(Load(session_id, key))
        return value

    async def put(
        self, session_id: str, key: str, value: bytes, *, ttl: float | None = None, yield_after: bool = True
    ) -> None:
        await self._call(Store(session_id, key, value, ttl), yield_after=yield_after)

    async def update(
        self,
        session_id: str,
        key: str,
        fn: Callable[[Any], Any],
        default: Any = None,
        *,
        ttl: float | None = None,
    ) -> Any:
        """Atomically (within this server) replace ``key``'s value with ``fn(old)``; returns it."""
        return await self._call(Update(session_id, key, fn, default, ttl))

    async def delete(self, session_id: str, key: str) -> bool:
        removed: bool = await self._call(Delete(session_id, key))
        return removed

    async def keys(self, session_id: str) -> list[str]:
        keys: list[str] = await self._call(Keys(session_id))
        return keys

    async def drop_session(self, session_id: str) -> None:
        await self._call(DropSession(session_id))

    def try_drop_now(self, session_id: str) -> bool:
        """``drop_session`` done at once when the short cut applies (an idle plain memory store, see
        ``_call``): True when dropped (a failure raises, as ``drop_session`` would), False when it must
        go through ``drop_session``. No checkpoint: for the runtime's own end of a session, whose
        task ends right after."""
        sync = self._sync
        if sync is None:
            return False
        ref = self._registry.whereis(STATE_STORE_NAME)
        if ref is None or not ref.idle:
            return False
        self.operations += 1
        reply = _run_now(sync, DropSession(session_id))
        if type(reply) is StoreFailed:
            raise reply.error
        return True

    async def expire(self) -> int:
        removed: int = await self._call(Expire())
        return removed
