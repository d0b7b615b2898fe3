"""Request framing on our HTTP/1.1 server (``_asgi_h11``), raw bytes on loopback sockets (issue 7: items 2,
12, 13): malformed framing is a 4xx, never a 500; Content-Length with Transfer-Encoding closes the
connection after the answer (RFC 9112 section 6.3); the request head limit is exact."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.http._asgi_h11 import serve_asgi
from test_asgi_h11 import echo, read_to_eof, read_until

#: every test here runs on each request parser of our server (conftest.http_parser)
pytestmark = pytest.mark.usefixtures("http_parser")


@asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(functools.partial(serve_asgi, app, port=0, **options))
        yield port
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def serving_mcp(**options: Any) -> AsyncIterator[int]:
    async with start_server(Server("framing", "1.0.0")) as mcp, trio.open_nursery() as nursery:
        port: int = await nursery.start(functools.partial(serve_http, mcp, port_number=0, **options))
        yield port
        nursery.cancel_scope.cancel()


async def exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(data)
        return await read_to_eof(stream)
    finally:
        await stream.aclose()


POST = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Accept: application/json, text/event-stream\r\n"
)
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # not hex
        b"-5\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcdef\r\n0\r\n\r\n",  # chunk longer than its size
        b"3 junk\x00\r\nabc\r\n0\r\n\r\n",
    ],
)
async def test_a_bad_chunk_is_400_not_500(body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async with serving_mcp() as port:
        answer = await exchange(port, POST + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert b"connection: close" in answer.lower()
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a client's bad framing"


async def test_a_bad_chunk_is_400_on_a_plain_app_too() -> None:
    async with serving(echo) as port:
        answer = await exchange(
            port, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_content_length_with_transfer_encoding_closes_after_the_answer() -> None:
    """The smuggling shape: the body is read as chunked (TE wins), the answer says close, and the bytes
    after it, a second request, are never served."""
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(PING), PING)
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    async with serving_mcp() as port:
        answer = await exchange(
            port, POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + body + smuggled
        )
        assert answer.count(b"HTTP/1.1 ") == 1, answer
        assert b"connection: close" in answer.lower()
        # the same request with either header alone keeps the connection for a second one
        plain = POST + b"Content-Length: %d\r\n\r\n%s" % (len(PING), PING)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = bytearray()
        for _ in range(2):
            await stream.send_all(plain)
            head = await read_until(stream, b"\r\n\r\n", buffer)
            assert head.startswith(b"HTTP/1.1 ") and b"connection: close" not in head.lower()
            await read_until(stream, b"}}", buffer)  # the body (a JSON-RPC error: no session)
        await stream.aclose()


def head_of(size: int) -> bytes:
    """A GET head of exactly ``size`` bytes (request line, headers, the blank line)."""
    start = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize("limit", [1024, 64 * 1024])
async def test_the_head_limit_is_exact(limit: int) -> None:
    assert len(head_of(limit)) == limit
    async with serving(echo, max_header_bytes=limit) as port:
        for size, status in ((limit - 1, b"200"), (limit, b"200"), (limit + 1, b"431"), (2 * limit, b"431")):
            answer = await exchange(port, head_of(size))
            assert answer.startswith(b"HTTP/1.1 " + status), (size, answer[:40])


async def test_the_head_limit_holds_whatever_the_packets() -> None:
    """Sent in pieces that straddle the read size, a head over the limit is still 431."""
    limit = 64 * 1024
    async with serving(echo, max_header_bytes=limit) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        data = head_of(limit + 5000)
        await stream.send_all(data[: limit - 10])
        await trio.sleep(0.05)
        await stream.send_all(data[limit - 10 :])
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 431 ")


async def test_the_default_head_limit_is_64_kib_also_through_serve_http() -> None:
    async with serving_mcp() as port:
        under = await exchange(port, head_of(64 * 1024))
        over = await exchange(port, head_of(64 * 1024 + 1))
    assert not under.startswith(b"HTTP/1.1 431") and under.startswith(b"HTTP/1.1 4")  # the app's (no session)
    assert over.startswith(b"HTTP/1.1 431 ")


async def test_a_head_request_is_answered_without_a_body(caplog: pytest.LogCaptureFixture) -> None:
    """Found by the fuzzer: HEAD got a 500 and a traceback (h11 refuses the body the app wrote)."""
    async with serving_mcp() as port:
        answer = await exchange(
            port, b"HEAD /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 404 ") and answer.endswith(b"\r\n\r\n")  # the head only
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_body_cut_short_by_a_half_close_is_400_not_500() -> None:
    """Found by the fuzzer: a client that sends part of its body, then shuts its side, got 500."""
    async with serving_mcp() as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(POST + b"Content-Length: 40\r\n\r\n{")
        await stream.send_eof()
        answer = await read_to_eof(stream)
        await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 400 ")
