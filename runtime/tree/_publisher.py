"""Notifications out of the server: to sessions' standalone streams and to 2026-07-28 listen streams.

The EventBus actor decides who hears a topic; this is its delivery end (``deliver``, ``everyone``) and
the server's way in (``publish`` from async code; ``list_changed`` / ``resource_updated``, the sync
hooks a ``Server`` calls when a handler registers a tool or a resource changes, possibly from a sync
handler's worker thread, from which they hop back onto the trio thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ..actors import ActorExited, MailboxFull, Registry
from ..protocol import Notification, list_changed_notification
from ._event_bus import ALL_SESSIONS, EVENT_BUS_NAME, Publish, resource_topic
from ._listen import Listeners
from ._session_table import SessionTable
from ._stats import ServerStats

logger = logging.getLogger("mcpvisor.runtime.tree")


@attrs.define(eq=False)
class Publisher:
    registry: Registry
    sessions: SessionTable
    listeners: Listeners
    stats: ServerStats
    #: The trio thread's token: a sync handler runs in a worker thread and may (un)register tools from
    #: there; list_changed must then hop back onto the trio thread.
    trio_token: trio.lowlevel.TrioToken = attrs.field(factory=trio.lowlevel.current_trio_token)
    #: With several nodes: sends a session's event to its GET stream on another node (True when it did).
    elsewhere: Callable[[str, Notification], bool] | None = None

    def deliver(self, subscriber_id: str, notification: Notification) -> None:
        slot = self.sessions.get(subscriber_id)
        if slot is not None and self.elsewhere is not None and self.elsewhere(subscriber_id, notification):
            return
        if slot is not None:
            if not slot.deliver_standalone(notification) and slot.standalone is not None:
                # Its GET stream's reader is too slow: count every drop, log the first of each stream.
                self.stats.count_dropped()
                slot.standalone_dropped += 1
                if slot.standalone_dropped == 1:
                    logger.warning(
                        "a session's standalone (GET) stream is read slower than notifications arrive: "
                        "dropping them (the count is in the server's stats)"
                    )
            return
        stream = self.listeners.get(subscriber_id)
        if stream is not None:
            stream.offer(notification)

    def everyone(self) -> list[str]:
        """Who hears a broadcast (``list_changed``): every live session and every listen stream."""
        return [*self.sessions.live_ids(), *self.listeners.ids()]

    async def publish(self, topic: str, notification: Notification) -> int:
        """Hand ``notification`` to the EventBus; returns how many sessions it reached."""
        bus = self.registry.whereis(EVENT_BUS_NAME)
        if bus is None:
            return 0
        delivered: int = await bus.call(Publish(topic, notification))
        return delivered

    def list_changed(self, kind: Any) -> None:
        self._publish_soon(ALL_SESSIONS, list_changed_notification(kind), f"list_changed({kind})")

    def resource_updated(self, uri: str) -> None:
        self._publish_soon(
            resource_topic(uri),
            Notification("notifications/resources/updated", {"uri": uri}),
            f"resources/updated({uri})",
        )

    def _publish_soon(self, topic: str, notification: Notification, what: str) -> None:
        """Hand a notification to the EventBus without waiting: callers are sync (Server listeners),
        possibly on a worker thread (a sync handler), from which we hop back onto the trio thread."""
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            self.trio_token.run_sync_soon(self._publish_soon, topic, notification, what)
            return
        bus = self.registry.whereis(EVENT_BUS_NAME)
        if bus is not None:
            try:
                bus.send_nowait(Publish(topic, notification))
            except (MailboxFull, ActorExited):
                logger.warning("%s dropped: the event bus is busy or restarting", what)
