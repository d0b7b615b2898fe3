"""The same abuse on ``serve_http(server="hypercorn")``: what we can enforce from outside hypercorn
(``_asgi_limits``) holds there too (issue 7: items 2, 9, 12, 13)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import serve_http
from test_asgi_h11 import read_to_eof
from test_http_framing import PING, POST, head_of


@asynccontextmanager
async def hypercorn(**options: Any) -> AsyncIterator[int]:
    async with start_server(Server("hyper", "1.0.0")) as mcp, trio.open_nursery() as nursery:
        port: int = await nursery.start(
            functools.partial(serve_http, mcp, port_number=0, server="hypercorn", **options)
        )
        yield port
        nursery.cancel_scope.cancel()


async def exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(data)
        return await read_to_eof(stream)
    finally:
        await stream.aclose()


async def test_a_bad_chunk_is_400() -> None:
    async with hypercorn() as port:
        answer = await exchange(port, POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_content_length_with_transfer_encoding_closes_after_the_answer() -> None:
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(PING), PING)
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    async with hypercorn() as port:
        answer = await exchange(
            port, POST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + body + smuggled
        )
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("limit", [4096, 64 * 1024])
async def test_the_head_limit(limit: int) -> None:
    async with hypercorn(max_header_bytes=limit) as port:
        under = await exchange(port, head_of(limit))
        over = await exchange(port, head_of(limit + 1))
    assert not under.startswith(b"HTTP/1.1 431") and under.startswith(b"HTTP/1.1 4")  # the app's (no session)
    assert over.startswith(b"HTTP/1.1 431 ")


async def test_a_body_that_never_comes_is_408() -> None:
    async with hypercorn(body_timeout=0.3) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(POST + b"Content-Length: 100\r\n\r\n{")
        started = trio.current_time()
        answer = await read_to_eof(stream)
        await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 408 ") and 0.25 < trio.current_time() - started < 3


async def test_hypercorn_has_no_connection_cap() -> None:
    async with start_server(Server("hyper", "1.0.0")) as mcp:
        with pytest.raises(ValueError, match="hypercorn has no connection cap"):
            await serve_http(mcp, port_number=0, server="hypercorn", max_connections=10)
