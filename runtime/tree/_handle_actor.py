"""HandleActor: one live state handle, as a SessionActor is one live session.

The actor owns the handle's lifecycle, not its values (those are in the SessionStateStore under the
handle's id, written through the StateStoreServer exactly like a session's). Each request that names the
handle first sends it ``Use(owner)``: the actor checks the owner, the handle's lifetime and that its
record still exists (another node may have closed it), and moves its idle deadline. A crash of the
actor (a handler raising ``CrashSession`` on a request bound to the handle) is restarted by the same
keeper that restarts sessions, under the same handle, with its values untouched.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import trio
from mcpvisor.supervisors import NORMAL

from ..actors import Caller, current_actor, run_actor
from ..server._state_handle import (
    HANDLE_KEY,
    HandleRecord,
    HandleRefused,
    expired_handle,
    foreign_handle,
    handle_label,
    unknown_handle,
)
from ._session_slot import SessionSlot

if TYPE_CHECKING:
    from ._handle_table import HandleTable


@attrs.define(eq=False)
class HandleSlot(SessionSlot):
    """What outlives a handle actor's incarnations: a ``SessionSlot`` (so the session keeper and the
    IdleReaper serve handles unchanged) plus the handle's record and its deadline in trio time."""

    record: HandleRecord | None = None
    #: ``record.expires_at`` converted to ``trio.current_time()`` when the slot was made.
    expires: float = math.inf
    #: A minted handle needs no handshake: its state exists from the start.
    initialized: bool = True
    kind: ClassVar[str] = "state handle"

    def crash_closed_hint(self, resume: bool = False) -> str:
        """What the client can do once the keeper gave up on this handle's actor (its values stay)."""
        return "Its values are kept until the handle expires: use the handle again to restart it"


@attrs.frozen
class Use:
    """A request names the handle; ``owner`` is who the request comes from (None: it does not say)."""

    owner: str | None


class HandleActor:
    """Behaviour: answers ``Use`` with None (go ahead) or the ``HandleRefused`` to raise."""

    def __init__(self, slot: HandleSlot, table: HandleTable) -> None:
        self.slot = slot
        self.table = table

    async def init(self) -> None:
        ref = current_actor()
        self.slot.set_ref(ref)
        if self.slot.closing:  # closed (or expired) while this incarnation was starting
            ref.request_stop(NORMAL)

    async def handle_call(self, msg: Any, _caller: Caller) -> HandleRefused | None:
        if type(msg) is not Use:
            raise TypeError(f"HandleActor got an unknown call {msg!r}")
        slot = self.slot
        record = slot.record
        assert record is not None
        handle = slot.session_id
        # The owner first: someone else's handle is refused the same way whether it lives or not.
        # An authenticated principal's handle is, to anyone else, one that does not exist (docs/auth.md):
        # saying "someone else's" would confirm the id.
        if record.owner is not None and msg.owner != record.owner:
            return unknown_handle(handle) if record.owner.startswith("principal:") else foreign_handle(handle)
        if trio.current_time() >= slot.expires:  # before ``closing``: the reaper may be ending it already
            return expired_handle(handle)
        if slot.closing:
            return unknown_handle(handle)
        if await self.table.store.get(handle, HANDLE_KEY) is None:
            return unknown_handle(handle)  # closed by another node, or dropped by the store's TTL
        self.table.touch(slot)
        return None


async def run_handle_incarnation(
    slot: SessionSlot, table: HandleTable, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
) -> None:
    """One life of the handle's actor (the session keeper's ``incarnation``): it raises what crashed it."""
    assert isinstance(slot, HandleSlot)
    try:
        await run_actor(
            HandleActor(slot, table),
            mailbox_size=table.mailbox_size,
            name=f"handle {handle_label(slot.session_id)}",
            task_status=task_status,
        )
    finally:
        slot.set_ref(None)
