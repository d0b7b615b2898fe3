"""The sessions this process holds, by id: one ``SessionSlot`` each, from its start to its end.

``RunningServer`` starts and ends sessions; everything that only looks one up (the ``ServerPort``'s
checks, introspection for tests and operators, delivery to a session's standalone stream) reads this
table, so the lookup rules (a closing session is not live; an unknown id is ``UnknownSession``) live
in one place.
"""

from __future__ import annotations

import attrs

from ..actors import ActorRef
from ._port import UnknownSession
from ._session_slot import SessionSlot


@attrs.define(eq=False)
class SessionTable:
    slots: dict[str, SessionSlot] = attrs.field(factory=dict)

    def get(self, session_id: str) -> SessionSlot | None:
        return self.slots.get(session_id)

    def known(self, session_id: str) -> SessionSlot:
        """The session's slot, closing or not; ``UnknownSession`` if this process does not hold it."""
        slot = self.slots.get(session_id)
        if slot is None:
            raise UnknownSession(session_id)
        return slot

    def live(self, session_id: str) -> SessionSlot:
        """The session's slot; ``UnknownSession`` if it is not held here or is closing."""
        slot = self.slots.get(session_id)
        if slot is None or slot.closing:
            raise UnknownSession(session_id)
        return slot

    def has(self, session_id: str) -> bool:
        slot = self.slots.get(session_id)
        return slot is not None and not slot.closing

    def live_ids(self) -> list[str]:
        """Ids of the live sessions (restarting ones included, closing ones not)."""
        return [sid for sid, slot in self.slots.items() if not slot.closing]

    def actor(self, session_id: str) -> ActorRef | None:
        """The current incarnation's ref (None between incarnations, or for an unknown id)."""
        slot = self.slots.get(session_id)
        return None if slot is None else slot.ref

    def add(self, slot: SessionSlot) -> None:
        self.slots[slot.session_id] = slot

    def remove(self, slot: SessionSlot) -> None:
        """Forget ``slot`` if it is still the one held under its id (a resumed session may hold it now)."""
        if self.slots.get(slot.session_id) is slot:
            del self.slots[slot.session_id]

    def discard(self, session_id: str) -> None:
        self.slots.pop(session_id, None)
