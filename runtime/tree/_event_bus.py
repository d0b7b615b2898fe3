"""EventBus: topic fan-out of notifications to sessions.

Sessions subscribe by id, not by actor ref, so a subscription survives the session actor's restart and
the bus never holds a dead ref. Delivery goes through a callback the running server supplies (it puts the
notification on the session's standalone stream), so the bus knows nothing about transports.

With several nodes on one Redis (``_cluster_bus``), the bus is also the one place where events cross
nodes: a ``Publish``, a session's (un)subscription, a message for one session's stream
(``ToSession``) and a session's end (``EndedEverywhere``) also go to the ClusterBus, and what other
nodes publish comes back as ``FromCluster`` and is delivered here under the same rule as a local
event. The visibility rule lives here and nowhere else: a topic's event reaches only the sessions
subscribed to it (or every session, for ``ALL_SESSIONS``), and a ``ToSession`` message reaches only
the session it names.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..actors import Caller
from ..protocol import Message, Notification
from ._cluster_bus import ENDED, PUBLISH, SUBSCRIBE, TO_SESSION, UNSUBSCRIBE, BusEvent, ClusterBus

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


@attrs.frozen
class ToSession:
    """A message for one session's standalone stream (a task's status, a request's progress), on
    whichever node the session's stream is open."""

    session_id: str
    message: Message


@attrs.frozen
class EndedEverywhere:
    """The session ended for good on this node (DELETE): other nodes end their actors and streams."""

    session_id: str


@attrs.frozen
class FromCluster:
    """An event another node published (delivered to this node's sessions only)."""

    event: BusEvent


Deliver = Callable[[str, Notification], None]


@attrs.frozen
class ClusterHooks:
    """What the bus needs from its server to take part in a cluster."""

    bus: ClusterBus
    #: Whether the session runs on this node (its subscriptions are mirrored here only then).
    has_session: Callable[[str], bool]
    #: Put a message on a local session's standalone stream; False when the session is not here.
    to_session: Callable[[str, Message], bool]
    #: End this node's actor of a session that ended on another node.
    end_here: Callable[[str], None]


class EventBus:
    """Behaviour: ``topic -> session ids``; ``Publish`` hands the notification to each subscriber.

    ``ALL_SESSIONS`` is delivered to every session the server knows (through ``all_sessions``).
    """

    def __init__(
        self,
        deliver: Deliver,
        all_sessions: Callable[[], list[str]],
        cluster: ClusterHooks | None = None,
    ) -> None:
        self._deliver = deliver
        self._all_sessions = all_sessions
        self._topics: dict[str, set[str]] = {}
        self._cluster = cluster

    def _share(
        self, kind: str, *, topic: str = "", session_id: str = "", message: Message | None = None
    ) -> None:
        cluster = self._cluster
        if cluster is not None:
            event = BusEvent(kind, cluster.bus.node_id, topic, session_id, message)
            cluster.bus.send_nowait(event)

    def _subscribe(self, topic: str, subscriber: str) -> None:
        self._topics.setdefault(topic, set()).add(subscriber)

    def _unsubscribe(self, topic: str, subscriber: str) -> None:
        members = self._topics.get(topic)
        if members is not None:
            members.discard(subscriber)
            if not members:
                del self._topics[topic]

    def _is_session(self, subscriber: str) -> bool:
        # A listen stream (``listen/<n>``) is this node's own; only sessions are mirrored.
        return self._cluster is not None and self._cluster.has_session(subscriber)

    async def handle_call(self, msg: object, _caller: Caller) -> int | None:
        if isinstance(msg, Subscribe):
            self._subscribe(msg.topic, msg.session_id)
            if self._is_session(msg.session_id):
                self._share(SUBSCRIBE, topic=msg.topic, session_id=msg.session_id)
            return None
        if isinstance(msg, Unsubscribe):
            self._unsubscribe(msg.topic, msg.session_id)
            if self._is_session(msg.session_id):
                self._share(UNSUBSCRIBE, topic=msg.topic, session_id=msg.session_id)
            return None
        if isinstance(msg, ToSession):
            cluster = self._cluster
            if cluster is None or cluster.to_session(msg.session_id, msg.message):
                return None
            self._share(TO_SESSION, session_id=msg.session_id, message=msg.message)
            return None
        if isinstance(msg, EndedEverywhere):
            self._share(ENDED, session_id=msg.session_id)
            return None
        if isinstance(msg, FromCluster):
            self._from_cluster(msg.event)
            return None
        if isinstance(msg, UnsubscribeAll):
            for topic in [t for t, m in self._topics.items() if msg.session_id in m]:
                self._topics[topic].discard(msg.session_id)
                if not self._topics[topic]:
                    del self._topics[topic]
            return None
        if isinstance(msg, Publish):
            self._share(PUBLISH, topic=msg.topic, message=msg.notification)
            return self._publish_here(msg.topic, msg.notification)
        raise TypeError(f"EventBus got an unknown message {msg!r}")

    def _publish_here(self, topic: str, notification: Notification) -> int:
        """Deliver to this node's subscribers of ``topic``; how many there were."""
        targets = self._all_sessions() if topic == ALL_SESSIONS else sorted(self._topics.get(topic, ()))
        for session_id in targets:
            self._deliver(session_id, notification)
        return len(targets)

    def _from_cluster(self, event: BusEvent) -> None:
        cluster = self._cluster
        if cluster is None:
            return
        if event.kind == PUBLISH:
            if isinstance(event.message, Notification):
                self._publish_here(event.topic, event.message)
        elif event.kind in (SUBSCRIBE, UNSUBSCRIBE):
            # Mirrored for the sessions that run here too, so an event published anywhere reaches
            # their streams here; a node that resumes the session later reads them from the store.
            if cluster.has_session(event.session_id):
                if event.kind == SUBSCRIBE:
                    self._subscribe(event.topic, event.session_id)
                else:
                    self._unsubscribe(event.topic, event.session_id)
        elif event.kind == TO_SESSION:
            if event.message is not None:
                cluster.to_session(event.session_id, event.message)
        elif event.kind == ENDED:
            cluster.end_here(event.session_id)

    async def handle_cast(self, msg: object) -> None:
        await self.handle_call(msg, None)  # type: ignore[arg-type]
