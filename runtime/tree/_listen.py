"""``subscriptions/listen`` (2026-07-28, SEP-2575): change notifications for session-less clients.

That revision has no session to push ``list_changed`` or ``resources/updated`` to, so a client opens a
long-lived request whose answer *is* the stream: an acknowledgement of the filter it asked for, then
each matching notification, stamped with the request's id as ``io.modelcontextprotocol/subscriptionId``.
It ends when the client cancels it (closes the HTTP response; ``notifications/cancelled`` on stdio) or
the server stops (a final result, so the client can tell a deliberate end from a lost connection).

A listen stream is one more subscriber of the EventBus, under an id of its own (``listen/<n>``), beside
the sessions: the bus stays the one place that fans notifications out, and a stream never shares an
object with the publishers, only receives through its bounded buffer.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import trio

from ..actors import ActorExited, ActorRef, MailboxFull
from ..protocol import INTERNAL_ERROR, INVALID_PARAMS, JsonRpcError, Notification, Request
from ..server._env import RequestEnv
from ._event_bus import Subscribe, UnsubscribeAll, resource_topic
from ._served_server import ServedServer

LISTEN_METHOD: Final = "subscriptions/listen"
SUBSCRIPTION_ID_META_KEY: Final = "io.modelcontextprotocol/subscriptionId"
ACKNOWLEDGED: Final = "notifications/subscriptions/acknowledged"
RESOURCE_UPDATED: Final = "notifications/resources/updated"
#: the filter's flags and the notification each one lets through
_FLAGS: Final = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}


@attrs.frozen
class ListenFilter:
    """What one stream asked for; every kind asked for is honoured (whether it ever fires is up to
    what the server publishes, as a subscription to a URI nobody updates is honoured and silent)."""

    methods: frozenset[str]
    uris: tuple[str, ...]

    @classmethod
    def parse(cls, params: Mapping[str, Any] | None) -> ListenFilter:
        wanted = (params or {}).get("notifications")
        if not isinstance(wanted, Mapping):
            raise JsonRpcError(
                INVALID_PARAMS, "subscriptions/listen needs params.notifications, a filter object"
            )
        uris = wanted.get("resourceSubscriptions", [])
        if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
            raise JsonRpcError(INVALID_PARAMS, "notifications.resourceSubscriptions must be a list of URIs")
        methods = {method for flag, method in _FLAGS.items() if wanted.get(flag) is True}
        return cls(frozenset(methods), tuple(dict.fromkeys(uris)))

    def honored(self) -> dict[str, Any]:
        """The acknowledged filter, wire form: only what is on (false flags are left out, not echoed)."""
        out: dict[str, Any] = {flag: True for flag, method in _FLAGS.items() if method in self.methods}
        if self.uris:
            out["resourceSubscriptions"] = list(self.uris)
        return out

    def admits(self, notification: Notification) -> bool:
        if notification.method == RESOURCE_UPDATED:
            params = notification.params or {}
            return params.get("uri") in self.uris
        return notification.method in self.methods


class ListenStream:
    """One open stream as the EventBus sees it: a filter in front of a bounded buffer."""

    def __init__(self, subscriber_id: str, meta: Mapping[str, Any], listen_filter: ListenFilter, buffer: int):
        self.subscriber_id = subscriber_id
        self.meta = dict(meta)
        self.filter = listen_filter
        self.send, self.receive = trio.open_memory_channel[Notification](buffer)

    def offer(self, notification: Notification) -> None:
        """Take a published notification if the filter admits it. A full buffer (a client that stopped
        reading) ends the stream: there is no replay, so the client re-listens and refetches."""
        if not self.filter.admits(notification):
            return
        params = dict(notification.params or {})
        params["_meta"] = {**(params.get("_meta") or {}), **self.meta}
        try:
            self.send.send_nowait(Notification(notification.method, params))
        except trio.WouldBlock:
            self.send.close()
        except trio.ClosedResourceError:
            pass


class Listeners:
    """The open listen streams of one running server, by subscriber id."""

    def __init__(self, event_bus: Callable[[], ActorRef | None], *, buffer: int = 256) -> None:
        self._event_bus = event_bus
        self._buffer = buffer
        self._open: dict[str, ListenStream] = {}
        self._ids = itertools.count(1)
        self._emptied = trio.Event()

    def ids(self) -> list[str]:
        return list(self._open)

    def get(self, subscriber_id: str) -> ListenStream | None:
        return self._open.get(subscriber_id)

    async def serve(self, server: ServedServer, request: Request, env: RequestEnv) -> dict[str, Any]:
        """The request handler of ``subscriptions/listen``: acknowledge, then forward until the end."""
        listen_filter = ListenFilter.parse(request.params)
        meta = {SUBSCRIPTION_ID_META_KEY: request.id}
        stream = ListenStream(f"listen/{next(self._ids)}", meta, listen_filter, self._buffer)
        self._open[stream.subscriber_id] = stream
        try:
            if listen_filter.uris:
                bus = self._bus()
                for uri in listen_filter.uris:
                    await bus.call(Subscribe(resource_topic(uri), stream.subscriber_id))
            # Subscribed before the acknowledgement goes out, so nothing published meanwhile is lost;
            # it stays the first message, as only this task writes the request's stream.
            await env.send_related(
                Notification(ACKNOWLEDGED, {"_meta": meta, "notifications": listen_filter.honored()})
            )
            async for notification in stream.receive:
                await env.send_related(notification)
        finally:
            del self._open[stream.subscriber_id]
            stream.send.close()
            if not self._open:
                self._emptied.set()
            if listen_filter.uris:
                with (
                    trio.CancelScope(shield=True),
                    contextlib.suppress(ActorExited, MailboxFull, JsonRpcError),
                ):
                    await self._bus().call(UnsubscribeAll(stream.subscriber_id))
        return {"_meta": meta}

    async def end_all(self, grace: float) -> None:
        """The server is stopping: end every stream gracefully (each answers its final result), waiting
        up to ``grace`` seconds for them to get it out."""
        if not self._open:
            return
        self._emptied = trio.Event()
        for stream in list(self._open.values()):
            stream.send.close()
        with trio.move_on_after(grace):
            await self._emptied.wait()

    def _bus(self) -> ActorRef:
        bus = self._event_bus()
        if bus is None:
            raise JsonRpcError(INTERNAL_ERROR, "the event bus is restarting: listen again shortly")
        return bus
