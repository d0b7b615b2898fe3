"""The HandleSupervisor's front: minting, resuming, checking, crashing and closing state handles.

Each live handle is a temporary child of the ``handles`` DynamicSupervisor, run by the session keeper
(same restart intensity, same supervision events, named ``handle <id>``) around a ``HandleActor``.
A handle is *live* in a process while it is used; after ``idle_timeout`` without a use its actor stops
(its values stay in the store) and the next request naming it starts a new one from the stored record,
exactly as a restarted process, or another node on a shared store, does. That keeps memory bounded by
the handles in use, while a handle itself lasts its whole ``ttl`` (handles outlive connections by
design, SEP-2567). Only ``close`` and expiry drop the values.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Final

import trio
from mcpvisor.supervisors import (
    NORMAL,
    ChildNotFound,
    ChildSpec,
    MaxChildrenReached,
    Restart,
    SupervisorNotRunning,
)

from ..actors import ActorExited, ActorRef
from ..server._state_handle import (
    HANDLE_KEY,
    HandleRecord,
    HandleRefused,
    StateHandle,
    expired_handle,
    handle_label,
    is_handle_shape,
    unknown_handle,
)
from ._handle_actor import HandleSlot, Use, run_handle_incarnation
from ._idle_reaper import IdleReaper
from ._session_keeper import keep_session
from ._session_slot import SessionSlot
from ._state_store_server import StateStoreClient

logger = logging.getLogger("mcpvisor.runtime.tree")

#: How long a use waits for a crashed handle's next incarnation before giving up (as sessions do).
_RESTART_WAIT: Final = 5.0


class HandleTable:
    """The live handles of one running server, and the operations requests perform on handles."""

    def __init__(
        self,
        store: StateStoreClient,
        *,
        idle_timeout: float,
        ttl: float,
        mailbox_size: int,
        restart_intensity: int,
        restart_period: float,
        shutdown_grace: float,
        on_event: Callable[[Any], None] | None,
        shared: bool = False,
    ) -> None:
        _check_lifetime("handle_idle_timeout", idle_timeout)
        _check_lifetime("handle_ttl", ttl)
        self.store = store
        self.idle_timeout = idle_timeout
        self.ttl = ttl
        self.mailbox_size = mailbox_size
        self._intensity = restart_intensity
        self._period = restart_period
        self._grace = shutdown_grace
        self._on_event = on_event
        #: Other processes may use (and close) the same handles through the store (``after_write``).
        self.shared = shared
        self.slots: dict[str, HandleSlot] = {}
        self.reaper = IdleReaper(self._idle)
        self._resuming: dict[str, trio.Event] = {}
        self._supervisor: Callable[[], Any] = lambda: None
        #: wall clock = trio clock + this: records carry wall-clock deadlines (every process reads
        #: them alike), and converting through one offset keeps them on trio's clock here (so a
        #: ``MockClock`` moves them too, and a jump of the system clock does not).
        self._wall_offset = time.time() - trio.current_time()

    def attach(self, supervisor: Callable[[], Any]) -> None:
        """Where to start handle actors: a function returning the running DynamicSupervisor (or None)."""
        self._supervisor = supervisor

    # ---- introspection ------------------------------------------------------------------------------

    def live(self) -> list[str]:
        return [h for h, slot in self.slots.items() if not slot.closing]

    def actor(self, handle: str) -> ActorRef | None:
        slot = self.slots.get(handle)
        return None if slot is None else slot.ref

    def incarnations(self, handle: str) -> int:
        slot = self.slots.get(handle)
        return 0 if slot is None else slot.incarnations

    # ---- what requests do ---------------------------------------------------------------------------

    async def open(
        self, owner: str | None, *, ttl: float | None = None, idle_timeout: float | None = None
    ) -> StateHandle:
        """Mint a handle for ``owner``, store its record and start its actor."""
        ttl = self.ttl if ttl is None else _check_lifetime("ttl", ttl)
        idle = self.idle_timeout if idle_timeout is None else _check_lifetime("idle_timeout", idle_timeout)
        handle = StateHandle.mint()
        now = trio.current_time()
        record = HandleRecord(owner, now + self._wall_offset + ttl, idle)
        # The store drops the record at the deadline too, so an expired handle is gone even where no
        # process holds it (the janitor's expire()). No ttl (math.inf) means the store's default.
        await self.store.put(handle, HANDLE_KEY, record.to_bytes(), ttl=None if math.isinf(ttl) else ttl)
        slot = self._slot(handle, record, resumed=False)
        slot.expires = now + ttl  # exactly: no round trip through the wall clock
        await self._start(slot)
        logger.info("state handle %s opened (ttl %gs)", handle_label(handle), ttl)
        return handle

    async def use(self, handle: str, owner: str | None) -> None:
        """Check that ``owner`` may use ``handle`` now (``HandleRefused`` if not), starting its actor
        from the stored record when this process holds none."""
        if not is_handle_shape(handle):
            raise unknown_handle(handle)
        for _attempt in range(3):
            slot = self.slots.get(handle)
            if slot is None:
                slot = await self._resume(handle)
            ref = slot.ref
            if ref is None or not ref.alive:
                ref = await self._wait_incarnation(slot)
            try:
                refusal: HandleRefused | None = await ref.call(Use(owner), timeout=None)
            except ActorExited:
                continue  # crashed meanwhile: the keeper restarts it
            if refusal is None:
                return
            expired = trio.current_time() >= slot.expires
            mine = slot.record is not None and slot.record.owner in (None, owner)
            if expired or mine:
                # Expired (whoever asked), or gone from the store: end it here too, and drop what is
                # left of it. Someone else's live handle is left alone.
                await self._end_for_good(slot, "expired" if expired else "gone")
            raise refusal
        raise HandleRefused(f"state handle {handle} is restarting; retry in a moment")

    async def after_write(self, handle: str) -> None:
        """A value of ``handle`` was just written: refuse the write (``HandleRefused``) if the handle
        ended meanwhile, and drop what the write left, so a write never revives a closed handle.

        A request checks its handle before its tool runs (``use``); a close (here, or through another
        node) or the expiry may come between that check and a write. Closing drops the record and the
        values in one atomic step of the store, so reading the record *after* the write decides it:
        present, and the write happened before any close (a later close drops it too); absent, and the
        write came after the drop, so it is dropped again here. In a process alone on its store only
        this process ends handles, and a live slot that is not closing says the same without a read.
        """
        slot = self.slots.get(handle)
        if not self.shared and slot is not None and not slot.closing:
            return
        ending = slot is not None and slot.closing and not slot.keep_values
        if not ending:
            try:
                if await self.store.get(handle, HANDLE_KEY) is not None:
                    return
            except Exception as exc:  # the write was acknowledged: it stands, as before this check
                logger.info(
                    "state handle %s: checking its record after a write failed: %r", handle_label(handle), exc
                )
                return
        # Ended: closed or expired (here or on another node), or gone from the store. Drop what the
        # write left (an ending here that has not dropped yet would too: dropping twice is harmless).
        await self.store.drop_session(handle)
        expired = slot is not None and trio.current_time() >= slot.expires
        raise expired_handle(handle) if expired else unknown_handle(handle)

    def crash(self, handle: str, reason: BaseException) -> bool:
        """Crash the handle's actor with ``reason`` (its keeper restarts it); False if none is live."""
        slot = self.slots.get(handle)
        ref = None if slot is None else slot.ref
        if ref is None or not ref.alive:
            return False
        ref.request_stop(reason)
        return True

    async def close(self, handle: str, owner: str | None) -> None:
        """End ``handle`` for good and drop its values (after the same checks as a use)."""
        await self.use(handle, owner)
        slot = self.slots.get(handle)
        if slot is not None:
            await self._end_for_good(slot, "closed")

    # ---- lifecycle ----------------------------------------------------------------------------------

    def touch(self, slot: HandleSlot) -> None:
        """A use: the idle deadline moves, but never past the handle's expiry."""
        slot.touch()
        record = slot.record
        idle = self.idle_timeout if record is None else record.idle_timeout
        slot.idle_timeout = max(0.0, min(idle, slot.expires - slot.last_activity))
        self.reaper.schedule(slot)

    def wall_time(self) -> float:
        return trio.current_time() + self._wall_offset

    def _slot(self, handle: str, record: HandleRecord, *, resumed: bool) -> HandleSlot:
        return HandleSlot(
            handle, resumed=resumed, record=record, expires=record.expires_at - self._wall_offset
        )

    def remaining(self, handle: str) -> float | None:
        """Seconds the live ``handle`` has left (None: not live here, or no end): the TTL its values
        are stored with, so they leave the store with the handle."""
        slot = self.slots.get(handle)
        if slot is None or math.isinf(slot.expires):
            return None
        return max(0.0, slot.expires - trio.current_time())

    async def _start(self, slot: HandleSlot) -> None:
        supervisor = self._supervisor()
        handle = slot.session_id
        if supervisor is None:
            raise HandleRefused("state handles are not available: the server is stopping or restarting")
        self.slots[handle] = slot
        spec = ChildSpec(
            handle_label(handle),  # child ids appear in supervision events and logs
            functools.partial(self._run, slot),
            restart=Restart.TEMPORARY,
            shutdown=self._grace,
        )
        try:
            slot.tree = await supervisor.start_child(spec)
        except MaxChildrenReached:
            self.slots.pop(handle, None)
            raise HandleRefused("too many state handles are live on this server; retry later") from None
        except BaseException:
            self.slots.pop(handle, None)
            raise
        if trio.current_time() < slot.expires:
            self.touch(slot)
        # else: resumed past its expiry; the use that resumed it refuses it as expired and ends it

    async def _resume(self, handle: str) -> HandleSlot:
        pending = self._resuming.get(handle)
        if pending is not None:  # another request is already loading it: share its answer
            await pending.wait()
            slot = self.slots.get(handle)
            if slot is None:
                raise unknown_handle(handle)
            return slot
        self._resuming[handle] = done = trio.Event()
        try:
            data = await self.store.get(handle, HANDLE_KEY)
            if data is None:
                raise unknown_handle(handle)
            slot = self._slot(handle, HandleRecord.from_bytes(data), resumed=True)
            await self._start(slot)
            logger.info("state handle %s resumed from the state store", handle_label(handle))
            return slot
        finally:
            del self._resuming[handle]
            done.set()

    def _ended_refusal(self, slot: SessionSlot) -> HandleRefused:
        """Why a handle that is ending is refused: its lifetime ran out, or it was closed."""
        assert isinstance(slot, HandleSlot)
        if trio.current_time() >= slot.expires:
            return expired_handle(slot.session_id)
        return unknown_handle(slot.session_id)

    async def _wait_incarnation(self, slot: SessionSlot) -> ActorRef:
        with trio.move_on_after(_RESTART_WAIT):
            while True:
                ref = slot.ref
                if ref is not None and ref.alive:
                    return ref
                if slot.closing or self.slots.get(slot.session_id) is not slot:
                    raise self._ended_refusal(slot)
                await slot.wait_changed()
        raise HandleRefused(f"state handle {slot.session_id} is restarting; retry in a moment")

    async def _end_for_good(self, slot: HandleSlot, reason: str) -> None:
        if not slot.closing:
            slot.closing = True
            slot.close_reason = reason
        supervisor = self._supervisor()
        if supervisor is not None and slot.tree is not None:
            with suppress(ChildNotFound, SupervisorNotRunning):
                await supervisor.terminate_child(slot.tree)
        await slot.done.wait()

    def _idle(self, slot: SessionSlot) -> None:
        """The IdleReaper's verdict: past its expiry the handle ends (values dropped); otherwise only
        its actor stops, and the next use starts a new one from the store."""
        assert isinstance(slot, HandleSlot)
        if trio.current_time() >= slot.expires:
            slot.closing = True
            slot.close_reason = "expired"
        ref = slot.ref
        if ref is not None:
            ref.request_stop(NORMAL)  # a normal end: the keeper does not restart it

    async def _run(
        self, slot: HandleSlot, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await keep_session(
                slot,
                self,
                intensity=self._intensity,
                period=self._period,
                on_event=self._on_event,
                task_status=task_status,
                incarnation=run_handle_incarnation,
                name=f"handle {handle_label(slot.session_id)}",
            )
        finally:
            await self._ended(slot)

    async def _ended(self, slot: HandleSlot) -> None:
        handle = slot.session_id
        if self.slots.get(handle) is slot:
            del self.slots[handle]
        self.reaper.forget(slot)
        slot.set_ref(None)
        try:
            if slot.closing and not slot.keep_values:
                logger.info(
                    "state handle %s ended (%s): dropping its values", handle_label(handle), slot.close_reason
                )
                with trio.move_on_after(self._grace) as scope:
                    scope.shield = True
                    try:
                        await self.store.drop_session(handle)
                    except Exception as exc:
                        logger.warning(
                            "state handle %s: dropping its values failed: %r", handle_label(handle), exc
                        )
        finally:
            slot.done.set()


def _check_lifetime(name: str, seconds: float) -> float:
    if not (isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0):
        raise ValueError(f"{name} must be a positive number of seconds (math.inf for none), not {seconds!r}")
    return float(seconds)
