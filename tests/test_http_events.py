"""The pieces under the HTTP transport: the SSE replay log, SSE framing, allow-lists, `Accept`."""

from __future__ import annotations

import json
import logging
import re

import pytest
import trio
import trio.testing
from _asgi_client import parse_event
from hypothesis import given
from hypothesis import strategies as st
from mcpvisor.runtime.transports.http._events import (
    ReplayStream,
    SessionStreams,
    format_event,
    format_retry,
    parse_event_id,
)
from mcpvisor.runtime.transports.http._guard import (
    DEFAULT_ALLOWED_HOSTS,
    DEFAULT_ALLOWED_ORIGINS,
    AllowList,
    accepted_types,
    accepts,
)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(max_size=8), st.booleans()),
        st.tuples(st.sampled_from(["take", "write", "since"]), st.integers(min_value=0, max_value=40)),
    ),
    max_size=60,
)


@given(ops, st.integers(min_value=1, max_value=10))
def test_replay_stream_never_evicts_an_unwritten_answer(steps: list[tuple[object, ...]], bound: int) -> None:
    # Model: every appended event, whether droppable (a notification), how far connections took and
    # wrote. The log may only lose written events and droppable ones, and counts the droppable ones
    # lost before any connection took them.
    stream = ReplayStream(7, max_events=bound)
    appended: dict[int, tuple[bytes, bool]] = {}
    taken = written = expected_dropped = 0
    present: set[int] = set()
    for op, *args in steps:
        if op == "append":
            data, droppable = args
            assert isinstance(data, bytes) and isinstance(droppable, bool)
            seq = stream.append(data, droppable=droppable)
            assert seq == len(appended) + 1 and stream.last_seq == seq
            appended[seq] = (data, droppable)
            present.add(seq)
        elif op == "take":
            taken = max(taken, min(int(args[0]), stream.last_seq))  # type: ignore[call-overload]
            stream.mark_taken(taken)
        elif op == "write":
            written = max(written, min(int(args[0]), stream.last_seq))  # type: ignore[call-overload]
            taken = max(taken, written)
            stream.mark_written(written)
        kept = list(stream.since(0))
        assert [s for s, _ in kept] == sorted({s for s, _ in kept})
        assert all(appended[s][0] == data for s, data in kept)
        now = {s for s, _ in kept}
        lost = present - now
        assert all(s <= written or appended[s][1] for s in lost), "an unwritten answer was evicted"
        expected_dropped += sum(1 for s in lost if s > taken and appended[s][1])
        present = now
        assert stream.dropped == expected_dropped
        if len(kept) > bound:  # only answers still owed may hold the log past its bound
            assert all(s > written and not appended[s][1] for s in now)
        if op == "since":
            after = int(args[0])  # type: ignore[call-overload]
            assert list(stream.since(after)) == [(s, d) for s, d in kept if s > after]
    assert stream.event_id(3) == "7-3"
    assert parse_event_id(stream.event_id(12)) == (7, 12)


def test_dropped_notifications_are_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    drops: list[int] = []
    stream = ReplayStream(3, max_events=2, on_drop=drops.append, label="POST stream of request 5")
    with caplog.at_level(logging.WARNING, "mcpvisor.runtime.transports"):
        for i in range(10):
            stream.append(b"note %d" % i, droppable=True)
        stream.append(b"answer")
    assert stream.dropped == 9 and sum(drops) == 9
    assert [d for _, d in stream.since(0)] == [b"note 9", b"answer"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "POST stream of request 5" in warnings[0]


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.text(max_size=12))
def test_parse_event_id_only_accepts_ids_we_issue(stream: int, seq: int, junk: str) -> None:
    assert parse_event_id(f"{stream}-{seq}") == (stream, seq)
    ours = re.fullmatch(r"[0-9]+-[0-9]+", junk.strip()) is not None
    assert (parse_event_id(junk) is not None) == ours
    assert parse_event_id("²-1") is None


def test_parse_event_id_rejects_foreign_ids() -> None:
    assert parse_event_id("event-12") is None
    assert parse_event_id("12") is None
    assert parse_event_id("3-x") is None
    assert parse_event_id(" 3-4 ") == (3, 4)


async def test_wait_after_wakes_on_append_and_on_finish() -> None:
    stream = ReplayStream(1)
    woke: list[str] = []

    async def waiter(name: str, seq: int) -> None:
        await stream.wait_after(seq)
        woke.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, "after-0", 0)
        nursery.start_soon(waiter, "after-1", 1)
        await trio.testing.wait_all_tasks_blocked()
        stream.append(b"a")
        await trio.testing.wait_all_tasks_blocked()
        assert woke == ["after-0"]
        stream.finish()
    assert woke == ["after-0", "after-1"]
    await stream.wait_after(99)  # finished: returns at once


def test_session_streams_evict_finished_streams_first() -> None:
    streams = SessionStreams(max_streams=3, max_events=4)
    first = streams.open()
    second = streams.open()
    second.finish()
    third = streams.open()
    fourth = streams.open()
    assert len(streams) == 3
    assert streams.get(second.key) is None  # the finished one went, though it was not the oldest
    assert streams.get(first.key) is first and streams.get(third.key) is third
    assert streams.get(fourth.key) is fourth
    fifth = streams.open()
    assert streams.get(first.key) is None and streams.get(fifth.key) is fifth  # none finished: oldest
    assert len({first.key, second.key, third.key, fourth.key, fifth.key}) == 5


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(
    json_values, st.none() | st.text("0123456789-", min_size=1, max_size=8), st.none() | st.integers(0, 10**6)
)
def test_sse_framing_round_trips(value: object, event_id: str | None, retry: int | None) -> None:
    data = json.dumps(value, separators=(",", ":")).encode()
    raw = format_event(data, event_id, retry)
    assert raw.endswith(b"\n\n") and raw.count(b"\n\n") == 1
    event = parse_event(raw[:-2])
    assert json.loads(event["data"]) == value
    assert event.get("id") == event_id
    assert event.get("retry") == (None if retry is None else str(retry))
    assert format_retry(250) == b"retry: 250\n\n"


@given(st.sampled_from(["localhost", "127.0.0.1", "[::1]", "LOCALHOST"]), st.none() | st.integers(1, 65535))
def test_loopback_hosts_pass_on_any_port(host: str, port: int | None) -> None:
    hosts = AllowList.of(None, DEFAULT_ALLOWED_HOSTS)
    origins = AllowList.of(None, DEFAULT_ALLOWED_ORIGINS)
    authority = host if port is None else f"{host}:{port}"
    assert hosts.allows_host(authority)
    assert origins.allows_origin(f"http://{authority}") and origins.allows_origin(f"https://{authority}")


@given(st.from_regex(r"[a-z][a-z0-9-]{0,10}\.(com|example|test)", fullmatch=True), st.integers(1, 65535))
def test_other_names_are_refused_by_default(name: str, port: int) -> None:
    hosts = AllowList.of(None, DEFAULT_ALLOWED_HOSTS)
    origins = AllowList.of(None, DEFAULT_ALLOWED_ORIGINS)
    assert not hosts.allows_host(name) and not hosts.allows_host(f"{name}:{port}")
    assert not origins.allows_origin(f"http://{name}:{port}")
    # A loopback name as a subdomain or with a trailing path is not loopback.
    assert not hosts.allows_host(f"localhost.{name}")
    assert not origins.allows_origin(f"http://localhost.{name}")
    assert not origins.allows_origin("http://localhost/evil")
    assert not origins.allows_origin("file://")


def test_allow_list_entries_with_ports_and_wildcards() -> None:
    hosts = AllowList.of(["mcp.example.com:8443", "api.example.com"], DEFAULT_ALLOWED_HOSTS)
    assert hosts.allows_host("mcp.example.com:8443") and not hosts.allows_host("mcp.example.com:80")
    assert hosts.allows_host("api.example.com:1234") and not hosts.allows_host("localhost")
    assert AllowList.of(["*"], ()).allows_host("anything:1") and AllowList.of(["*"], ()).allows_origin("null")


def test_accept_parsing() -> None:
    assert accepted_types(None) == frozenset({"*/*"})
    both = accepted_types("application/json, text/event-stream")
    assert accepts(both, "application/json") and accepts(both, "text/event-stream")
    no_sse = accepted_types("application/json;q=0.9, text/event-stream;q=0")
    assert accepts(no_sse, "application/json") and not accepts(no_sse, "text/event-stream")
    assert accepts(accepted_types("text/*"), "text/event-stream")
    assert not accepts(accepted_types("text/html"), "application/json")
