"""Resuming, on this node, a POST stream another node served (``Last-Event-ID`` behind a balancer).

The stream's log is in Redis (``tree._cluster_stream_log``): this node replays the events the client
missed under their original ids, then follows the log as the serving node keeps writing it, until the
stream finishes. If the serving node dies first (its liveness lease expires), the stream's requests
that never got an answer are answered here with a retryable JSON-RPC error (``data.retryable``), so
the client retries them instead of waiting for ever.
"""

from __future__ import annotations

import json
import logging
from typing import Final

import trio

from ...protocol import INTERNAL_ERROR, encode, error_response
from ...tree._cluster_stream_log import SharedStreamLog, StoredStream
from ._events import ReplayStream
from ._exchange import Exchange
from ._state import AppState

logger = logging.getLogger("mcpvisor.runtime.transports")

#: How often the follower re-reads the log (seconds), and checks that its node still lives.
POLL_INTERVAL: Final = 0.05
LIVENESS_INTERVAL: Final = 0.5


def answered_ids(events: list[tuple[int, bytes]]) -> set[object]:
    """Ids of the requests whose response (result or error) is among ``events``."""
    answered: set[object] = set()
    for _, data in events:
        try:
            message = json.loads(data)
        except ValueError:
            continue
        if isinstance(message, dict) and "id" in message and ("result" in message or "error" in message):
            rid = message["id"]
            if isinstance(rid, str | int):
                answered.add(rid)
    return answered


async def follow_elsewhere(
    state: AppState,
    ex: Exchange,
    log: SharedStreamLog,
    session_id: str,
    key: int,
    after: int,
    stored: StoredStream,
) -> None:
    """Serve the rest of another node's POST stream ``key`` on this connection."""
    stream = ReplayStream(key, last_seq=after, max_events=state.options.max_events_per_stream)
    for seq, data in stored.events:
        stream.restore(seq, data)

    async def pump() -> None:
        info = stored
        next_check = trio.current_time() + LIVENESS_INTERVAL
        while not info.finished:
            await trio.sleep(POLL_INTERVAL)
            fresh = await log.load(session_id, key, stream.last_seq)
            if fresh is None:  # expired from Redis meanwhile: what it owed is lost with its node
                break
            info = fresh
            for seq, data in info.events:
                stream.restore(seq, data)
            if info.finished or trio.current_time() < next_check:
                continue
            next_check = trio.current_time() + LIVENESS_INTERVAL
            if not await log.node_alive(info.node):
                await _answer_orphans(log, session_id, key, info, stream)
                break
        stream.finish()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump)
        await state.follow(ex, stream, after=after, resumable=True, prime=False)
        nursery.cancel_scope.cancel()


async def _answer_orphans(
    log: SharedStreamLog, session_id: str, key: int, info: StoredStream, stream: ReplayStream
) -> None:
    whole = await log.load(session_id, key, 0)
    answered = answered_ids(whole.events if whole is not None else [])
    orphans = [rid for rid in info.requests if isinstance(rid, str | int) and rid not in answered]
    logger.info(
        "SSE stream of node %s resumed here after it stopped: %d request(s) answered with a retryable error",
        info.node,
        len(orphans),
    )
    for rid in orphans:
        stream.append(
            encode(
                error_response(
                    rid,
                    INTERNAL_ERROR,
                    f"the node serving this request ({info.node}) stopped before it answered; retry it "
                    "(the session continues on another node)",
                    {"retryable": True},
                )
            )
        )
