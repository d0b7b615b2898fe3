"""The SSE event log in Redis: a stream opened on one node can be resumed (``Last-Event-ID``) on any.

Behind a round-robin balancer a client that lost its connection (the node died, the server asked it
to poll, the network blinked) comes back with ``GET`` + ``Last-Event-ID`` through whatever node the
balancer picks. The node that served the stream keeps its log in memory (the HTTP transport's
``ReplayStream``); this module mirrors that log into Redis so another node can replay what the client
missed and follow the rest, and, when the stream's node died before it answered, answer the stream's
requests with a retryable error instead of leaving the client waiting for ever.

Cost is paid only by streams at risk. A flush runs every ``flush_interval`` seconds (20 ms); a stream
that was finished and written in full to its connection by then (a quick request: nearly all of them)
is never written to Redis. Any other stream is written with everything still in its local log, then
followed until it finishes. Per stream, Redis holds one hash (node, kind, request ids, finished) and
one sorted set of events (score: sequence number), bounded like the local log (``max_events``) and
expiring ``ttl`` seconds after their last write.

What it does not promise: the events of the last flush interval before a node's death are lost with
it (the client then gets the retryable error for the stream's requests), and a stream delivered in
full before the flush is not in Redis (its client has what it needs).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, Protocol

import attrs
import trio
from mcpvisor.backends._redis_connection import RedisConnection

from ._cluster_lease import Leases

logger = logging.getLogger("mcpvisor.runtime.tree")

#: How often pending events go to Redis (seconds).
DEFAULT_FLUSH_INTERVAL: Final = 0.02
#: How long a stream's log stays in Redis after its last write (seconds).
DEFAULT_LOG_TTL: Final = 3600.0
#: Stream writes one flush runs at once.
_WRITERS: Final = 32
#: Streams tracked at once per node; past it the oldest finished (else oldest) stop being mirrored.
MAX_TRACKED: Final = 10_000

# KEYS: events (zset), meta (hash). ARGV: ttl ms, max events, node, standalone, requests json,
# finished ("1"/"0"), then seq, data pairs. One round trip per stream per flush.
_WRITE: Final = """
local n = #ARGV
for i = 7, n, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i] .. ':' .. ARGV[i + 1])
end
local size = redis.call('ZCARD', KEYS[1])
local keep = tonumber(ARGV[2])
if size > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, size - keep - 1)
end
redis.call('HSET', KEYS[2], 'node', ARGV[3], 'standalone', ARGV[4], 'requests', ARGV[5], 'finished', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return size
"""

# KEYS: events, meta. ARGV: after. Returns {node, standalone, requests, finished, member...} or {}.
_READ: Final = """
local meta = redis.call('HMGET', KEYS[2], 'node', 'standalone', 'requests', 'finished')
if meta[1] == false then
  return {}
end
local out = {meta[1], meta[2], meta[3], meta[4]}
local events = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
for _, e in ipairs(events) do
  table.insert(out, e)
end
return out
"""


class MirroredStream(Protocol):
    """What the log reads of a stream (the HTTP transport's ``ReplayStream``)."""

    key: int
    standalone: bool
    finished: bool

    @property
    def last_seq(self) -> int: ...

    @property
    def written(self) -> int: ...

    def since(self, seq: int) -> Iterator[tuple[int, bytes]]: ...


@attrs.frozen
class StoredStream:
    """A stream as Redis has it: the node that served it, its requests, and the events after a point."""

    node: str
    standalone: bool
    finished: bool
    requests: list[Any]
    events: list[tuple[int, bytes]]


@attrs.define(eq=False)
class _Tracked:
    session_id: str
    stream: MirroredStream
    requests: list[Any]
    mirrored: int = 0
    in_redis: bool = False


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _raw(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class SharedStreamLog:
    """This node's mirror of its SSE streams into Redis, and the reader of other nodes' streams."""

    def __init__(
        self,
        url: str,
        prefix: str,
        node_id: str,
        *,
        max_events: int = 1024,
        ttl: float = DEFAULT_LOG_TTL,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        self.node_id = node_id
        self.max_events = max_events
        self.ttl = ttl
        self.flush_interval = flush_interval
        self._prefix = f"{prefix}:sse"
        self._conn = RedisConnection(url, owner=f"SSE event log of node {node_id}")
        self._leases = Leases(self._conn, prefix)
        self._tracked: OrderedDict[tuple[str, int], _Tracked] = OrderedDict()
        #: Streams written to Redis, and flushes that failed (for tests and stats).
        self.mirrored_streams = 0
        self.failed_flushes = 0

    async def aclose(self) -> None:
        await self._conn.aclose()

    def _keys(self, session_id: str, key: int) -> list[str]:
        base = f"{self._prefix}:{session_id}:{key}"
        return [f"{base}:events", f"{base}:meta"]

    # ---- the node that serves a stream --------------------------------------------------------------

    def track(self, session_id: str, stream: MirroredStream, requests: Sequence[Any] = ()) -> None:
        """Mirror ``stream`` from now on (its requests' ids name what a dead node never answered)."""
        self._tracked[(session_id, stream.key)] = _Tracked(session_id, stream, list(requests))
        if len(self._tracked) > MAX_TRACKED:
            victim = next((k for k, t in self._tracked.items() if t.stream.finished), None)
            self._tracked.pop(victim if victim is not None else next(iter(self._tracked)))

    def untrack_session(self, session_id: str) -> None:
        for key in [k for k in self._tracked if k[0] == session_id]:
            del self._tracked[key]

    async def run(self) -> None:
        """Flush forever (the cluster bus runs it in its nursery)."""
        while True:
            await trio.sleep(self.flush_interval)
            await self.flush()

    async def flush(self) -> None:
        """Write what each tracked stream has new; the writes of one flush run concurrently (one
        round trip each, at most ``_WRITERS`` at once), so many slow streams cost one flush's latency."""
        work: list[tuple[tuple[str, int], _Tracked, list[tuple[int, bytes]], bool]] = []
        for ident, tracked in list(self._tracked.items()):
            stream = tracked.stream
            done = stream.finished and stream.written >= stream.last_seq
            if done and not tracked.in_redis:
                self._tracked.pop(ident, None)  # delivered in full before it was ever at risk
                continue
            # A GET stream's events already written to its connection reached the client (or went
            # with its node): only what it still owes is at risk.
            start = max(tracked.mirrored, stream.written) if stream.standalone else tracked.mirrored
            events = list(stream.since(start))
            if tracked.in_redis and not events and not stream.finished:
                continue
            work.append((ident, tracked, events, stream.finished))
        if not work:
            return
        limiter = trio.CapacityLimiter(_WRITERS)
        async with trio.open_nursery() as nursery:
            for item in work:
                nursery.start_soon(self._flush_one, limiter, *item)

    async def _flush_one(
        self,
        limiter: trio.CapacityLimiter,
        ident: tuple[str, int],
        tracked: _Tracked,
        events: list[tuple[int, bytes]],
        finished: bool,
    ) -> None:
        async with limiter:
            try:
                await self._write(tracked, events, finished=finished)
            except Exception as exc:  # Redis slow or away: the next flush tries again
                self.failed_flushes += 1
                if self.failed_flushes == 1 or self.failed_flushes % 1000 == 0:
                    logger.warning("node %s: writing the SSE event log failed: %r", self.node_id, exc)
                return
        if not tracked.in_redis:
            tracked.in_redis = True
            self.mirrored_streams += 1
        if events:
            tracked.mirrored = max(tracked.mirrored, events[-1][0])
        if finished:
            self._tracked.pop(ident, None)

    async def _write(self, tracked: _Tracked, events: Iterable[tuple[int, bytes]], *, finished: bool) -> None:
        args: list[str | bytes] = [
            str(max(1, int(self.ttl * 1000))),
            str(self.max_events),
            self.node_id,
            "1" if tracked.stream.standalone else "0",
            json.dumps(tracked.requests),
            "1" if finished else "0",
        ]
        for seq, data in events:
            args += [str(seq), data]
        await self._conn.script(_WRITE, self._keys(tracked.session_id, tracked.stream.key), args)

    # ---- a node that resumes another node's stream --------------------------------------------------

    async def load(self, session_id: str, key: int, after: int = 0) -> StoredStream | None:
        """The stream as Redis has it, with its events after ``after`` (None: not in Redis)."""
        out = await self._conn.script(_READ, self._keys(session_id, key), [str(after)])
        if not isinstance(out, list) or len(out) < 4:
            return None
        events: list[tuple[int, bytes]] = []
        for member in out[4:]:
            seq, _, data = _raw(member).partition(b":")
            events.append((int(seq), data))
        try:
            requests = json.loads(_text(out[2]))
        except ValueError:
            requests = []
        return StoredStream(
            node=_text(out[0]),
            standalone=_text(out[1]) == "1",
            finished=_text(out[3]) == "1",
            requests=requests if isinstance(requests, list) else [],
            events=events,
        )

    async def node_alive(self, node: str) -> bool:
        """Whether ``node`` still holds its liveness lease (``_cluster_liveness``)."""
        return await self._leases.holder(f"node:{node}") is not None
