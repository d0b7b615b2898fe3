"""The round-robin proxy of the cluster tests behaves as the kill test assumes (tests/_cluster_proxy.py).

The kill test's verdicts rest on the proxy's rules, so each is checked here against stand-in nodes
(raw trio TCP servers with canned answers): every request goes to the next node even on one keep-alive
connection; a refused connection moves on to another node; a node that fails after the request was
sent gives 502 and is not retried; a node's stream cut mid-body cuts the client's.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import httpx2
import pytest
import trio
from _cluster_proxy import open_proxy

Handler = Callable[[trio.SocketStream], Awaitable[None]]


async def _read_head(stream: trio.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


def answering(name: str, seen: list[str] | None = None) -> Handler:
    async def handler(stream: trio.SocketStream) -> None:
        head = await _read_head(stream)
        if seen is not None:
            seen.append(head.split(b"\r\n", 1)[0].decode())
        body = name.encode()
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        await stream.aclose()

    return handler


async def failing_before_head(stream: trio.SocketStream) -> None:
    await _read_head(stream)
    await stream.aclose()  # the request arrived; no answer: the proxy must not send it elsewhere


async def cutting_mid_body(stream: trio.SocketStream) -> None:
    await _read_head(stream)
    await stream.send_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        b"f\r\ndata: first\r\n\r\n\r\n"
    )
    await trio.sleep(0.05)
    await stream.aclose()  # no last chunk: the stream was cut


async def _node(nursery: trio.Nursery, handler: Handler) -> tuple[str, int]:
    listeners = await nursery.start(trio.serve_tcp, handler, 0)
    return "127.0.0.1", listeners[0].socket.getsockname()[1]


def _dead_port() -> tuple[str, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "127.0.0.1", sock.getsockname()[1]  # closed again: connecting is refused


async def test_every_request_goes_to_the_next_node_on_one_connection() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            a = await _node(nursery, answering("a"))
            b = await _node(nursery, answering("b"))
            async with open_proxy([a, b]) as (proxy, url), httpx2.AsyncClient() as http:
                names = [(await http.post(url, content=b"{}")).text for _ in range(6)]
            assert names == ["a", "b", "a", "b", "a", "b"]
            assert proxy.stats.requests == {f"{a[0]}:{a[1]}": 3, f"{b[0]}:{b[1]}": 3}
            nursery.cancel_scope.cancel()


async def test_a_refused_connection_moves_on_and_the_dead_node_is_skipped() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            a = await _node(nursery, answering("a"))
            dead = _dead_port()
            async with open_proxy([dead, a], down_for=60) as (proxy, url), httpx2.AsyncClient() as http:
                answers = [await http.post(url, content=b"{}") for _ in range(5)]
            assert [(r.status_code, r.text) for r in answers] == [(200, "a")] * 5
            assert proxy.stats.refused == {f"{dead[0]}:{dead[1]}": 1}  # then skipped while marked down
            nursery.cancel_scope.cancel()


async def test_a_node_failing_after_the_request_was_sent_is_a_502_and_not_retried() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            seen: list[str] = []
            broken = await _node(nursery, failing_before_head)
            other = await _node(nursery, answering("other", seen))
            async with open_proxy([broken, other]) as (proxy, url), httpx2.AsyncClient() as http:
                first = await http.post(url, content=b"{}")
                assert (first.status_code, seen) == (502, [])  # the other node never saw it
                assert (await http.post(url, content=b"{}")).text == "other"
            assert (proxy.stats.bad_gateway, proxy.stats.cut_posts) == (1, 1)
            nursery.cancel_scope.cancel()


async def test_a_stream_cut_by_the_node_is_cut_for_the_client() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            cutter = await _node(nursery, cutting_mid_body)
            async with (
                open_proxy([cutter]) as (proxy, url),
                httpx2.AsyncClient() as http,
                http.stream("POST", url, content=b"{}") as response,
            ):
                assert response.status_code == 200
                received = b""
                with pytest.raises(httpx2.RemoteProtocolError):
                    async for chunk in response.aiter_bytes():
                        received += chunk
                assert received == b"data: first\r\n\r\n"
            assert (proxy.stats.cut_streams, proxy.stats.cut_posts) == (1, 1)
            nursery.cancel_scope.cancel()
