"""SSE streams that outlive their connection: the in-memory event log behind resumability.

A POST's SSE stream belongs to its request, not to the TCP connection carrying it: the spec says a
disconnect is not a cancellation, and a server may close the connection early so the client "polls"
(SEP-1699). So every stream writes its events into a `ReplayStream` first, and a connection only follows
that log. A client that lost the connection sends `GET` with `Last-Event-ID: <stream>-<seq>` and a new
connection follows the same log from that point; events are never replayed onto another stream.

Everything here is bounded: a stream keeps about `max_events` events, a session keeps its last
`max_streams` streams, so a client that never comes back costs a fixed amount of memory. The bound
never costs an answer: an event not yet written to any connection is evicted only when it is a
notification (progress, logs: "droppable"); responses and server-to-client requests stay until they
are written, so a stream may grow past `max_events` by the answers it still owes (a batch holds at
most one per request in it). Dropped notifications are counted (`ReplayStream.dropped`, and the
`on_drop` callback the transport feeds its `ServerStats` from) and logged once per stream.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator

import attrs
import trio

logger = logging.getLogger("mcpvisor.runtime.transports")


def format_event(data: bytes, event_id: str | None = None, retry_ms: int | None = None) -> bytes:
    """One SSE event. JSON from `encode` has no raw newlines, so one `data:` line always suffices."""
    out = b""
    if event_id is not None:
        out += b"id: " + event_id.encode() + b"\n"
    if retry_ms is not None:
        out += b"retry: " + str(retry_ms).encode() + b"\n"
    return out + b"data: " + data + b"\n\n"


def format_retry(retry_ms: int) -> bytes:
    """A `retry:`-only event: tells the client how long to wait before it reconnects."""
    return b"retry: " + str(retry_ms).encode() + b"\n\n"


def _is_number(text: str) -> bool:
    # str.isdigit alone admits "²", which int() refuses; and int() refuses more than 4,300 digits,
    # far past any id we issue (18 digits are a billion billion streams or events).
    return text.isascii() and text.isdigit() and len(text) <= 18


def parse_event_id(value: str) -> tuple[int, int] | None:
    """`"<stream>-<seq>"` -> (stream, seq); None for ids we never issued."""
    stream, sep, seq = value.strip().partition("-")
    if not sep or not _is_number(stream) or not _is_number(seq):
        return None
    return int(stream), int(seq)


@attrs.define(eq=False)
class ReplayStream:
    """The ordered events of one SSE stream, kept so a later connection can pick them up.

    Sequence numbers start at 1; 0 is the priming event, which carries no data and is never stored.
    `finished` means no event will follow (the request's final response is in, or the standalone stream
    ended), so a follower that has seen everything can end its HTTP response.

    Past `max_events`, events already written to a connection go first (they are kept only for a
    resume), then unwritten *droppable* ones (notifications), oldest first; those are counted in
    `dropped`. Unwritten answers and server-to-client requests are never evicted.
    """

    key: int
    standalone: bool = False
    max_events: int = 1024
    finished: bool = False
    #: How many times the handler asked to end the connection early (``ctx.close_sse_stream()``).
    polls: int = 0
    #: Notifications evicted before any connection wrote them (the client never saw them).
    dropped: int = 0
    #: Called with 1 for every dropped notification (the transport's stats counter).
    on_drop: Callable[[int], None] | None = None
    #: What the one log line about drops names ("the POST stream of request 7").
    label: str = ""
    _events: OrderedDict[int, bytes] = attrs.field(factory=OrderedDict)
    _droppable: deque[int] = attrs.field(factory=deque)
    #: Connections following this stream right now (see ``attach``).
    followers: int = 0
    _unfollowed_at: float | None = None
    _last_seq: int = 0
    _taken: int = 0
    _written: int = 0
    _lot: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def written(self) -> int:
        """The highest sequence number a connection has written so far."""
        return self._written

    def event_id(self, seq: int) -> str:
        return f"{self.key}-{seq}"

    def append(self, data: bytes, *, droppable: bool = False) -> int:
        """Log one event; ``droppable=True`` for a notification, which the bound may evict unwritten."""
        if self.finished:
            raise RuntimeError(f"SSE stream {self.key} is finished")
        self._last_seq += 1
        self._events[self._last_seq] = data
        if droppable:
            self._droppable.append(self._last_seq)
        self._evict()
        self._lot.unpark_all()
        return self._last_seq

    def restore(self, seq: int, data: bytes) -> None:
        """Log an event under the number another node gave it (a stream resumed from the cluster's
        log, ``_resume_elsewhere``); one at or before the last is already here."""
        if seq > self._last_seq:
            self._last_seq = seq - 1
            self.append(data)

    def mark_taken(self, seq: int) -> None:
        """A connection is writing every event up to ``seq``: a notification among them that the bound
        evicts meanwhile is not lost (the write holds it), so it is not counted as dropped."""
        self._taken = max(self._taken, seq)

    def mark_written(self, seq: int) -> None:
        """A connection wrote every event up to ``seq``: they may now go first when the log is full."""
        self._taken = max(self._taken, seq)
        if seq > self._written:
            self._written = seq
            self._evict()

    def _evict(self) -> None:
        events = self._events
        while len(events) > self.max_events:
            oldest = next(iter(events))
            if oldest <= self._written:
                events.popitem(last=False)
                continue
            # Every event left is unwritten: only a notification may go.
            droppable = self._droppable
            while droppable and droppable[0] not in events:
                droppable.popleft()
            if not droppable:
                return  # answers owed: the log grows past its bound until they are written
            victim = droppable.popleft()
            del events[victim]
            if victim > self._taken:
                self._count_drop()

    def _count_drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1:
            logger.warning(
                "SSE %s: the client reads slower than the server writes; dropping notifications "
                "(answers and server requests are kept; the count is in the server's stats)",
                self.label or f"stream {self.key}",
            )
        if self.on_drop is not None:
            self.on_drop(1)

    def attach(self) -> None:
        """A connection starts following this stream."""
        self.followers += 1
        self._lot.unpark_all()

    def detach(self) -> None:
        """That connection ended (delivered, cut for polling, or its client left)."""
        self.followers -= 1
        if not self.followers:
            self._unfollowed_at = trio.current_time()
        self._lot.unpark_all()

    async def wait_abandoned(self, grace: float) -> bool:
        """True once no connection has followed this unfinished stream for ``grace`` seconds (its
        client left and did not resume); False as soon as the stream finishes."""
        while not self.finished:
            if self.followers:
                await self._lot.park()
                continue
            since = self._unfollowed_at if self._unfollowed_at is not None else trio.current_time()
            with trio.move_on_at(since + grace) as waited:
                while not self.finished and not self.followers:
                    await self._lot.park()
            if waited.cancelled_caught:
                return True
        return False

    def request_poll(self) -> None:
        """The handler wants the current connection ended (its client will resume with GET)."""
        self.polls += 1
        self._lot.unpark_all()

    def finish(self) -> None:
        self.finished = True
        self._lot.unpark_all()

    def since(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """Stored events after `seq` (older ones may have been dropped by the bound).

        Walks back from the newest event, so a follower that keeps up pays for the new events only,
        not for the whole log on every wake-up.
        """
        newer: list[tuple[int, bytes]] = []
        for s, data in reversed(self._events.items()):
            if s <= seq:
                break
            newer.append((s, data))
        newer.reverse()
        return iter(newer)

    async def wait_after(self, seq: int, polls: int | None = None) -> None:
        """Return once an event after `seq` exists or the stream is finished (or, given `polls`, once
        a poll beyond that count was requested)."""
        while self._last_seq <= seq and not self.finished and (polls is None or self.polls <= polls):
            await self._lot.park()


@attrs.define(eq=False)
class SessionStreams:
    """The replayable streams of one session; stream keys are unique within it, so event ids are too."""

    max_streams: int = 64
    max_events: int = 1024
    #: Handed to every stream opened here (see ``ReplayStream.on_drop``).
    on_drop: Callable[[int], None] | None = None
    #: Called with each stream opened for requests (their ids) or as a GET stream: the cluster's
    #: shared log (``SharedStreamLog.track``) mirrors them so another node can resume them.
    on_open: Callable[[ReplayStream, list[object]], None] | None = None
    #: Stream keys say the stream's kind (odd: a POST's; even: a GET stream), so a node that knows
    #: neither the stream nor its log can tell a lost POST stream (whose client waits for an answer).
    kind_in_key: bool = False
    _streams: OrderedDict[int, ReplayStream] = attrs.field(factory=OrderedDict)
    _keys: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))

    def open(
        self, *, standalone: bool = False, label: str = "", requests: list[object] | None = None
    ) -> ReplayStream:
        """A new stream; ``requests`` are the ids of the requests it answers (None: nothing to mirror,
        as for a stream delivered in one write)."""
        key = next(self._keys)
        if self.kind_in_key:
            key = (key & ~1) | (0 if standalone else 1)
        stream = ReplayStream(
            key,
            standalone=standalone,
            max_events=self.max_events,
            on_drop=self.on_drop,
            label=label,
        )
        self._streams[stream.key] = stream
        self._evict()
        if self.on_open is not None and (standalone or requests is not None):
            self.on_open(stream, requests or [])
        return stream

    def get(self, key: int) -> ReplayStream | None:
        return self._streams.get(key)

    def discard(self, key: int) -> None:
        """Forget a stream delivered in full; its key is never reused."""
        self._streams.pop(key, None)

    def _evict(self) -> None:
        # Drop the oldest finished streams first; unfinished ones only when nothing else is left.
        excess = len(self._streams) - self.max_streams
        if excess <= 0:
            return
        victims = [key for key, s in self._streams.items() if s.finished][:excess]
        if len(victims) < excess:
            others = [key for key in self._streams if key not in victims]
            victims += others[: excess - len(victims)]
        for key in victims:
            del self._streams[key]

    def __len__(self) -> int:
        return len(self._streams)


def cluster_keys() -> Iterator[int]:
    """Stream keys unique across nodes (random, 52 bits): an event id minted on one node never names
    another node's stream, so a resume anywhere finds the right log."""
    while True:
        yield secrets.randbits(52) | 2


def is_post_stream_key(key: int) -> bool:
    """A key from ``SessionStreams(kind_in_key=True)`` that named a POST's stream."""
    return key & 1 == 1
