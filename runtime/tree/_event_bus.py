"""EventBus: topic fan-out of notifications to sessions.

Sessions subscribe by id, not by actor ref, so a subscription survives the session actor's restart and
the bus never holds a dead ref. Delivery goes through a callback the running server supplies (it puts the
notification on the session's standalone stream), so the bus knows nothing about transports.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..actors import Caller
from ..protocol import Notification

#: The registry name of the EventBus.
EVENT_BUS_NAME = "event_bus"

#: Every session hears this topic (``notifications/*/list_changed``).
ALL_SESSIONS = "*"


def resource_topic(uri: str) -> str:
    """The topic of ``notifications/resources/updated`` for ``uri``."""
    return f"resource:{uri}"


@attrs.frozen
class Subscribe:
    topic: str
    session_id: str


@attrs.frozen
class Unsubscribe:
    topic: str
    session_id: str


@attrs.frozen
class UnsubscribeAll:
    session_id: str


@attrs.frozen
class Publish:
    topic: str
    notification: Notification


Deliver = Callable[[str, Notification], None]


class EventBus:
    """Behaviour: ``topic -> session ids``; ``Publish`` hands the notification to each subscriber.

    ``ALL_SESSIONS`` is delivered to every session the server knows (through ``all_sessions``).
    """

    def __init__(self, deliver: Deliver, all_sessions: Callable[[], list[str]]) -> None:
        self._deliver = deliver
        self._all_sessions = all_sessions
        self._topics: dict[str, set[str]] = {}

    async def handle_call(self, msg: object, _caller: Caller) -> int | None:
        if isinstance(msg, Subscribe):
            self._topics.setdefault(msg.topic, set()).add(msg.session_id)
            return None
        if isinstance(msg, Unsubscribe):
            members = self._topics.get(msg.topic)
            if members is not None:
                members.discard(msg.session_id)
                if not members:
                    del self._topics[msg.topic]
            return None
        if isinstance(msg, UnsubscribeAll):
            for topic in [t for t, m in self._topics.items() if msg.session_id in m]:
                self._topics[topic].discard(msg.session_id)
                if not self._topics[topic]:
                    del self._topics[topic]
            return None
        if isinstance(msg, Publish):
            if msg.topic == ALL_SESSIONS:
                targets = self._all_sessions()
            else:
                targets = sorted(self._topics.get(msg.topic, ()))
            for session_id in targets:
                self._deliver(session_id, msg.notification)
            return len(targets)
        raise TypeError(f"EventBus got an unknown message {msg!r}")

    async def handle_cast(self, msg: object) -> None:
        await self.handle_call(msg, None)  # type: ignore[arg-type]
