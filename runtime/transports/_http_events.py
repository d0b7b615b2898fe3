"""SSE streams that outlive their connection: the in-memory event log behind resumability.

A POST's SSE stream belongs to its request, not to the TCP connection carrying it: the spec says a
disconnect is not a cancellation, and a server may close the connection early so the client "polls"
(SEP-1699). So every stream writes its events into a `ReplayStream` first, and a connection only follows
that log. A client that lost the connection sends `GET` with `Last-Event-ID: <stream>-<seq>` and a new
connection follows the same log from that point; events are never replayed onto another stream.

Everything here is bounded: a stream keeps its last `max_events` events, a session keeps its last
`max_streams` streams, so a client that never comes back costs a fixed amount of memory.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Iterator

import attrs
import trio


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
    """

    key: int
    standalone: bool = False
    max_events: int = 1024
    finished: bool = False
    #: How many times the handler asked to end the connection early (``ctx.close_sse_stream()``).
    polls: int = 0
    _events: deque[tuple[int, bytes]] = attrs.field(factory=deque)
    _last_seq: int = 0
    _lot: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def event_id(self, seq: int) -> str:
        return f"{self.key}-{seq}"

    def append(self, data: bytes) -> int:
        if self.finished:
            raise RuntimeError(f"SSE stream {self.key} is finished")
        self._last_seq += 1
        self._events.append((self._last_seq, data))
        while len(self._events) > self.max_events:
            self._events.popleft()
        self._lot.unpark_all()
        return self._last_seq

    def request_poll(self) -> None:
        """The handler wants the current connection ended (its client will resume with GET)."""
        self.polls += 1
        self._lot.unpark_all()

    def finish(self) -> None:
        self.finished = True
        self._lot.unpark_all()

    def since(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """Stored events after `seq` (older ones may have been dropped by the bound)."""
        return ((s, data) for s, data in list(self._events) if s > seq)

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
    _streams: OrderedDict[int, ReplayStream] = attrs.field(factory=OrderedDict)
    _keys: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))

    def open(self, *, standalone: bool = False) -> ReplayStream:
        stream = ReplayStream(next(self._keys), standalone=standalone, max_events=self.max_events)
        self._streams[stream.key] = stream
        self._evict()
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
