"""SSE stream serving: the one helper every resumable stream goes through, and GET / DELETE.

A session's POST stream, a batch's stream and the standalone GET stream are all served the same way:
a pump fills the stream's replay log while ``write_stream`` follows it to the client; a stream written
to its end leaves the log, one that was not stays for a GET with ``Last-Event-ID``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs
import trio

from ...protocol import INTERNAL_ERROR, INVALID_REQUEST
from ...tree._cluster_stream_log import SharedStreamLog, StoredStream
from ...tree._port import UnknownSession
from ._events import ReplayStream, SessionStreams, is_post_stream_key, parse_event_id
from ._exchange import Exchange
from ._guard import SSE, accepted_types, accepts
from ._headers import LAST_EVENT_ID_HEADER, SESSION_HEADER
from ._resume_elsewhere import follow_elsewhere
from ._state import AppState, stateless_client
from ._streaming import pump_standalone

logger = logging.getLogger("mcpvisor.runtime.transports")


async def serve_stream(
    state: AppState,
    ex: Exchange,
    streams: SessionStreams,
    stream: ReplayStream,
    pump: Callable[[], Awaitable[object]],
    *,
    poll_after: float | None = None,
    stop_pump: bool = False,
    if_unfollowed: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `pump` (which fills `stream`) while the client follows `stream` from its start.

    `stop_pump` cancels the pump once the connection ends (a standalone stream's pump never ends by
    itself); otherwise it runs to its end. `if_unfollowed` runs when the connection ended before the
    stream did (the client may still resume it). A stream delivered to its end leaves `streams`.
    """
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump)
        delivered = await state.follow(ex, stream, after=0, resumable=True, prime=True, poll_after=poll_after)
        if not delivered and if_unfollowed is not None:
            await if_unfollowed()
        if stop_pump:
            nursery.cancel_scope.cancel()
    if delivered:
        streams.discard(stream.key)


async def _load_shared(log: SharedStreamLog, session_id: str, key: int, after: int) -> StoredStream | None:
    """Another node's stream from the cluster's log. A POST stream's log reaches Redis within a flush
    interval of its start, so a resume that comes sooner (a client told to poll at once) waits for it
    a little before taking the stream for lost."""
    for attempt in range(5):
        try:
            stored = await log.load(session_id, key, after)
        except Exception as exc:  # Redis away: as for any unknown stream
            logger.warning("could not read the SSE event log in Redis: %r", exc)
            return None
        if stored is not None or not is_post_stream_key(key) or attempt == 4:
            return stored
        await trio.sleep(log.flush_interval * 2)
    return None


@attrs.frozen
class StreamRoutes:
    """GET (the standalone stream, or the resumption of a POST's) and DELETE (end the session)."""

    state: AppState

    async def get(self, ex: Exchange, headers: dict[str, str]) -> None:
        if stateless_client(headers):
            await ex.error(
                405, INVALID_REQUEST, "Method Not Allowed: no GET stream in 2026-07-28", [("allow", "POST")]
            )
            return
        if not accepts(accepted_types(headers.get("accept")), SSE):
            await ex.error(406, INVALID_REQUEST, "Not Acceptable: GET needs Accept: text/event-stream")
            return
        session_id = await self.state.live_session(ex, headers.get(SESSION_HEADER))
        if session_id is None:
            return
        streams = self.state.session_streams(session_id)
        resume = (
            parse_event_id(headers.get(LAST_EVENT_ID_HEADER, "")) if LAST_EVENT_ID_HEADER in headers else None
        )
        previous = streams.get(resume[0]) if resume is not None else None
        backlog: list[tuple[int, bytes]] = []
        log = self.state.shared_log
        if previous is None and resume is not None and log is not None:
            # Not a stream of this node: another node of the cluster may have served it.
            stored = await _load_shared(log, session_id, resume[0], resume[1])
            if stored is not None and not stored.standalone:
                await follow_elsewhere(self.state, ex, log, session_id, resume[0], resume[1], stored)
                return
            if stored is not None:  # another node's GET stream: what it had not written comes first
                backlog = stored.events
            elif is_post_stream_key(resume[0]):
                # A POST's stream that no node has: its node stopped before its log reached Redis.
                # Its client waits for an answer that cannot come; a fresh GET stream would never
                # carry it, so say so (clients give up resuming and fail the request, then retry it).
                await ex.error(
                    410,
                    INTERNAL_ERROR,
                    "Gone: the node that served this stream stopped before its events were shared; "
                    "retry the request",
                )
                return
        if previous is not None and resume is not None and not previous.standalone:
            # Resuming a POST's stream: the rest of that request's events, then its response.
            # Polls the handler asked for before this GET were honoured by earlier connections.
            if await self.state.follow(
                ex, previous, after=resume[1], resumable=True, prime=False, polls_seen=previous.polls
            ):
                streams.discard(previous.key)
            return
        try:
            channel = self.state.port.standalone_stream(session_id)
        except UnknownSession as exc:
            await self.state.transport_error(ex, exc)
            return
        stream = streams.open(standalone=True, label="GET stream")
        # When this resumes a standalone stream, the events its old connection missed go first on the
        # new one (with new ids: ids are per stream, and this is a new stream).
        if previous is not None and resume is not None:
            backlog = list(previous.since(resume[1]))

        async def pump() -> None:
            await pump_standalone(channel, stream, backlog)

        await serve_stream(self.state, ex, streams, stream, pump, stop_pump=True)

    async def delete(self, ex: Exchange, headers: dict[str, str]) -> None:
        if stateless_client(headers):
            await ex.error(
                405, INVALID_REQUEST, "Method Not Allowed: no sessions in 2026-07-28", [("allow", "POST")]
            )
            return
        session_id = await self.state.live_session(ex, headers.get(SESSION_HEADER))
        if session_id is None:
            return
        await self.state.port.close_session(session_id)
        self.state.forget(session_id)
        await ex.respond(200)
