"""ClusterBus: the EventBus's Redis transport, so an event raised on one node reaches every node.

With a Redis session store or task backend, several server processes ("nodes") serve the same
sessions behind a load balancer, and a client's GET stream may be open on another node than the one
where its event happens. Each node's ``EventBus`` then hands every event that may concern a session
elsewhere to this bus, which publishes it on one Redis pub/sub channel (``{prefix}:bus``, the store's
key prefix, so servers on different prefixes never hear each other); every node subscribes to that
channel and hands what it hears back to its own ``EventBus``, which delivers it to its local sessions
under the same visibility rule as a local event (``_event_bus``).

Why pub/sub and not a stream: a notification on a GET stream is fire-and-forget in MCP (a client
that was not listening has missed it on one node too), so at-most-once delivery to the nodes
listening now is the semantics we already have; replay for ``Last-Event-ID`` is a separate, bounded
log. Redis is the one shared engine; no peer-to-peer connections between nodes.

Failure modes: publishing never blocks the EventBus (events wait in a bounded queue; past it, or
while Redis is unreachable, they are dropped and counted, like a GET stream read too slowly). The
bus runs as a supervised child; when its connection fails it crashes and restarts, and events
published meanwhile by other nodes are missed (pub/sub keeps nothing for absent subscribers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
import trio
from mcpvisor.backends import decode, encode

from ..auth._principal import Principal
from ..protocol import Message
from ..protocol._jsonrpc import Malformed, from_json, to_json
from ..server._caller import Requester

logger = logging.getLogger("mcpvisor.runtime.tree")

#: Events waiting to be published; past this the bus drops (and counts) rather than grow.
DEFAULT_QUEUE: Final = 10_000

#: Event kinds (a short string on the wire; ``BusEvent.kind``).
PUBLISH: Final = "publish"
SUBSCRIBE: Final = "subscribe"
UNSUBSCRIBE: Final = "unsubscribe"
TO_SESSION: Final = "to_session"
ENDED: Final = "ended"
#: Forwarding (``_cluster_owner``), on a node's own channel: a client's message for a session the
#: receiving node does not own, the owner's answers, and the owner's refusal.
FORWARD: Final = "forward"
FORWARD_REPLY: Final = "forward_reply"
FORWARD_FAIL: Final = "forward_fail"
_KINDS: Final = frozenset(
    {PUBLISH, SUBSCRIBE, UNSUBSCRIBE, TO_SESSION, ENDED, FORWARD, FORWARD_REPLY, FORWARD_FAIL}
)


@attrs.frozen
class BusEvent:
    """One event between nodes.

    ``publish``: ``message`` to the subscribers of ``topic``; ``subscribe`` / ``unsubscribe``: the
    session ``session_id`` (un)subscribed ``topic`` on ``origin``; ``to_session``: ``message`` for
    the session's standalone stream only (a task's status, a request's progress or log message);
    ``ended``: the session ended everywhere (DELETE), its live actors and GET streams end too.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(_KINDS))
    origin: str
    topic: str = ""
    session_id: str = ""
    message: Message | None = None
    #: Forwarding: the exchange's token, and a refusal's reason.
    token: str = ""
    detail: str = ""
    #: Forwarding: who sent the message (headers, authenticated principal), so it runs as its caller.
    caller: Requester | None = None

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {"k": self.kind, "o": self.origin, "t": self.topic, "s": self.session_id}
        if self.token:
            body["x"] = self.token
        if self.detail:
            body["d"] = self.detail
        if self.message is not None:
            body["m"] = to_json(self.message)
        if self.caller is not None:
            body["c"] = caller_to_wire(self.caller)
        return encode(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> BusEvent:
        """``ValueError`` for anything that is not an event this version writes."""
        try:
            raw = decode(data)
        except Exception as exc:
            raise ValueError(f"undecodable bus event: {exc!r}") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"a bus event is a map, got {type(raw).__name__}")  # noqa: TRY004
        message = None
        if "m" in raw:
            parsed = from_json(raw["m"])
            if isinstance(parsed, Malformed):
                raise ValueError(f"a bus event carries a malformed message: {parsed!r}")
            message = parsed
        try:
            return cls(
                kind=str(raw["k"]),
                origin=str(raw["o"]),
                topic=str(raw.get("t", "")),
                session_id=str(raw.get("s", "")),
                message=message,
                token=str(raw.get("x", "")),
                detail=str(raw.get("d", "")),
                caller=caller_from_wire(raw["c"]) if "c" in raw else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"bad bus event {raw!r}: {exc}") from exc


def caller_to_wire(caller: Requester) -> dict[str, Any]:
    """A ``Requester`` as a map the codec carries (the headers, and the principal's fields)."""
    body: dict[str, Any] = {"h": dict(caller.headers)}
    principal = caller.principal
    if principal is not None:
        body["p"] = {
            "sub": principal.subject,
            "iss": principal.issuer,
            "cid": principal.client_id,
            "scp": sorted(principal.scopes),
            "clm": dict(principal.claims),
            "exp": principal.expires_at,
        }
    return body


def caller_from_wire(raw: Any) -> Requester:
    """``caller_to_wire``'s inverse; ``ValueError`` for anything else."""
    if not isinstance(raw, dict) or not isinstance(raw.get("h"), dict):
        raise ValueError(f"a bus event's caller is a map with headers, got {raw!r}")  # noqa: TRY004
    headers = {str(k): str(v) for k, v in raw["h"].items()}
    p = raw.get("p")
    if p is None:
        return Requester(headers)
    if not isinstance(p, dict) or not isinstance(p.get("sub"), str):
        raise ValueError(f"a bus event's principal has no subject: {p!r}")  # noqa: TRY004
    expires = p.get("exp")
    principal = Principal(
        p["sub"],
        issuer=p.get("iss"),
        client_id=p.get("cid"),
        scopes=frozenset(str(s) for s in p.get("scp") or ()),
        claims=dict(p.get("clm") or {}),
        expires_at=float(expires) if isinstance(expires, int | float) else None,
    )
    return Requester(headers, principal)


class ClusterBus:
    """One node's end of the bus: ``send_nowait`` publishes, the running child hears the others.

    Built before the server's tree (the EventBus may queue events while the bus connects); the tree
    runs it as its last child (``__call__``), so its restarts restart nothing else.
    """

    def __init__(self, url: str, prefix: str, node_id: str, *, queue: int = DEFAULT_QUEUE) -> None:
        self.url = url
        self.node_id = node_id
        self.channel = f"{prefix}:bus"
        self.prefix = prefix
        #: This node's own channel (forwarded requests and their answers).
        self.own_channel = self.node_channel(node_id)
        self._send, self._queue = trio.open_memory_channel[tuple[str, BusEvent]](queue)
        self._nursery: trio.Nursery | None = None
        #: Loops that run as long as the bus does (restarted with it), e.g. lease renewal.
        self.background: list[Callable[[], Awaitable[None]]] = []
        #: Told of an event for one node that did not reach it: ``(event, sure)``, ``sure`` when it
        #: certainly did not (not queued, or no subscriber on that node's channel), else it may have.
        self.undelivered: Callable[[BusEvent, bool], None] | None = None
        #: Called when the bus stops (or restarts): what ran in its nursery has ended with it.
        self.on_stop: list[Callable[[], None]] = []
        #: Events this node could not publish (queue full, or Redis failed).
        self.dropped = 0
        #: Events this node heard from others and handed to its EventBus.
        self.received = 0

    def __repr__(self) -> str:  # the supervision log shows it as a child's handle
        return f"ClusterBus(node={self.node_id!r}, channel={self.channel!r})"

    def node_channel(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    def send_nowait(self, event: BusEvent, node: str | None = None) -> None:
        """Publish ``event`` to every node, or to ``node`` only (on its own channel)."""
        channel = self.channel if node is None else self.node_channel(node)
        try:
            self._send.send_nowait((channel, event))
        except trio.WouldBlock:
            self._drop(f"{event.kind} event dropped: the cluster bus queue is full")
            self._undelivered(channel, event, sure=True)

    def _undelivered(self, channel: str, event: BusEvent, *, sure: bool) -> None:
        if channel != self.channel and self.undelivered is not None:
            self.undelivered(event, sure)

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def spawn(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` in the bus's nursery (it lives as long as the bus); False if not running."""
        if self._nursery is None:
            return False
        self._nursery.start_soon(fn, *args)
        return True

    def _drop(self, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            logger.warning("node %s: %s (%d dropped so far)", self.node_id, why, self.dropped)

    async def __call__(
        self,
        hear: Callable[[BusEvent], None],
        *,
        task_status: trio.TaskStatus[ClusterBus] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Subscribe, then publish the queue and hand what others publish to ``hear`` until cancelled."""
        from mcpvisor.backends._redis_connection import RedisConnection

        sub = RedisConnection(
            self.url, owner=f"cluster bus of node {self.node_id}", channels=[self.channel, self.own_channel]
        )
        pub = RedisConnection(self.url, owner=f"cluster bus of node {self.node_id}")
        try:
            await sub.client()  # glide subscribes as the connection opens: nothing is missed after this
            await pub.client()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._publish, pub)
                for loop in self.background:
                    nursery.start_soon(loop)
                self._nursery = nursery
                task_status.started(self)
                while True:
                    _, payload = await sub.next_message()
                    try:
                        event = BusEvent.from_bytes(payload)
                    except ValueError as exc:
                        logger.warning("node %s: ignoring a bus message: %s", self.node_id, exc)
                        continue
                    if event.origin != self.node_id:
                        self.received += 1
                        hear(event)
        finally:
            self._nursery = None
            for stopped in self.on_stop:
                stopped()
            with trio.CancelScope(shield=True):
                await sub.aclose()
                await pub.aclose()

    async def _publish(self, pub: Any) -> None:
        async for channel, event in self._queue:
            try:
                received = await pub.publish(channel, event.to_bytes())
            except Exception as exc:  # Redis down or slow: drop this one, keep going
                self._drop(f"{event.kind} event dropped: publishing failed ({exc!r})")
                self._undelivered(channel, event, sure=False)
                continue
            if received == 0:  # a node's own channel nobody listens on: that node is gone
                self._undelivered(channel, event, sure=True)


def cluster_target(*backends: object) -> tuple[str, str] | None:
    """``(url, prefix)`` of the first Redis backend among ``backends`` (None: no Redis, no cluster)."""
    for backend in backends:
        target = getattr(backend, "cluster_target", None)
        if isinstance(target, tuple) and len(target) == 2:
            return str(target[0]), str(target[1])
    return None
