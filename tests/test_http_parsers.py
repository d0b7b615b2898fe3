"""Our HTTP server on its two request parsers (httptools, the default, and h11): where they must agree,
and the few request shapes where llhttp is stricter than h11 (refused 400 on httptools, served on h11).

The agreements tested here are the rules ``_httptools_reader`` re-applies on top of llhttp because
llhttp alone is more lenient than h11, and the framing ``_httptools_connection`` does instead of h11:
each test fails on the httptools path without that code.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.http._asgi_h11 import DEFAULT_PARSER, HTTP_PARSERS, serve_asgi
from test_asgi_h11 import echo, read_to_eof

Scope = dict[str, Any]


@asynccontextmanager
async def serving(app: Any, parser: str, **options: Any) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(
            functools.partial(serve_asgi, app, host="127.0.0.1", port=0, parser=parser, **options)
        )
        yield port
        nursery.cancel_scope.cancel()


async def exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(data)
        with trio.move_on_after(0.3):  # a kept-alive connection: take what came
            return await read_to_eof(stream)
        raise AssertionError("the server kept the connection open")
    finally:
        await stream.aclose()


async def answers(parser: str, data: bytes, app: Any = echo) -> bytes:
    """Everything the server sends for ``data`` (sent whole, then half-closed) until it closes."""
    async with serving(app, parser) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            await stream.send_all(data)
            await stream.send_eof()
            return await read_to_eof(stream)
        finally:
            await stream.aclose()


def statuses(answer: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)


def test_httptools_is_the_default_parser() -> None:
    assert HTTP_PARSERS == ("httptools", "h11")
    assert DEFAULT_PARSER == "httptools"


async def test_an_unknown_parser_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown HTTP parser 'picohttp'"):
        await serve_asgi(echo, port=0, parser="picohttp")
    with pytest.raises(ValueError, match="unknown HTTP parser"):
        await serve_http(None, http_parser="picohttp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hypercorn parses with h11"):
        await serve_http(None, http_server="hypercorn", http_parser="h11")  # type: ignore[arg-type]


BOTH = pytest.mark.parametrize("parser", ["httptools", "h11"])
GET = b"GET / HTTP/1.1\r\nHost: h\r\n"


@BOTH
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host on HTTP/1.1
        (GET + b"Host: h2\r\n\r\n", b"400"),  # two
        (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", b"400"),  # two spaces in the request line
        (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", b"400"),  # a target that is not visible ASCII
        (b"\r\n" + GET + b"\r\n", b"400"),  # a blank line before the request line
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", b"501"),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
        (GET + b"Content-Length: x\r\n\r\n", b"400"),
        (GET + b"X Y: z\r\n\r\n", b"400"),  # a header name that is not a token
        (GET + b"X: a\x00b\r\n\r\n", b"400"),
    ],
)
async def test_both_parsers_refuse_the_same_requests(
    parser: str, request_bytes: bytes, status: bytes
) -> None:
    answer = await answers(parser, request_bytes)
    assert statuses(answer) == [status], answer[:200]
    assert b"connection: close" in answer.lower()


async def headers_seen(scope: Scope, receive: Any, send: Any) -> None:
    """Answers with the request's headers as the app saw them, one per line."""
    text = b"\n".join(b"%s=[%s]" % pair for pair in scope["headers"])
    text += b"\nversion=" + scope["http_version"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text})


@BOTH
async def test_both_parsers_give_the_app_the_same_headers(parser: str) -> None:
    """Lowercased names in the order sent, optional whitespace around values stripped."""
    answer = await answers(
        parser,
        b"GET / HTTP/1.1\r\nHost: h\r\nX-One:  a b \t\r\nX-Two:c\r\nConnection: close\r\n\r\n",
        headers_seen,
    )
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert body == b"host=[h]\nx-one=[a b]\nx-two=[c]\nconnection=[close]\nversion=1.1"


@BOTH
async def test_a_chunked_body_and_the_request_behind_it_in_one_packet(parser: str) -> None:
    """The chunked reader must stop exactly at the end of its message (trailers included): the next
    request, in the same packet, is served as a request of its own."""
    first = b"POST /one HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    first += b"3;ext=1\r\nabc\r\n4\r\nd\nef\r\n0\r\nTrailer: x\r\n\r\n"
    second = b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nxy"
    answer = await answers(parser, first + second)
    assert statuses(answer) == [b"200", b"200"], answer
    assert answer.index(b"POST /one  abcd\nef") < answer.index(b"POST /two  xy")


@BOTH
async def test_trailer_fields_are_not_request_headers(parser: str) -> None:
    """The fields after a chunked body's last chunk are dropped (as h11 does), never added to the
    headers the app was given (or checked Host and session ids on)."""

    async def body_then_headers(scope: Scope, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await headers_seen(scope, receive, send)

    data = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    data += b"3\r\nabc\r\n0\r\nMcp-Session-Id: stolen\r\nHost: evil\r\n\r\n"
    answer = await answers(parser, data, body_then_headers)
    assert statuses(answer) == [b"200"], answer
    assert b"stolen" not in answer and b"evil" not in answer


@BOTH
async def test_http_1_0_is_answered_once_and_closed(parser: str) -> None:
    """h11 keeps no HTTP/1.0 connection alive; neither do we on httptools (even with keep-alive asked)."""
    async with serving(echo, parser) as port:
        answer = await exchange(port, b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + GET + b"\r\n")
    assert statuses(answer) == [b"200"]
    assert b"connection: close" in answer.lower()


async def streamed(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"part one,", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b" part two"})


@BOTH
async def test_a_streamed_answer_is_chunked_to_http_1_1_and_close_delimited_to_http_1_0(parser: str) -> None:
    async with serving(streamed, parser) as port:
        new = await exchange(port, GET + b"Connection: close\r\n\r\n")
        old = await exchange(port, b"GET / HTTP/1.0\r\n\r\n")
    assert b"transfer-encoding: chunked" in new.lower()
    assert new.endswith(b"\r\n\r\n9\r\npart one,\r\n9\r\n part two\r\n0\r\n\r\n")
    assert b"transfer-encoding" not in old.lower() and b"content-length" not in old.lower()
    assert b"connection: close" in old.lower() and old.endswith(b"\r\n\r\npart one, part two")


@BOTH
async def test_no_body_for_head_204_and_304(parser: str) -> None:
    async def status_from_path(scope: Scope, receive: Any, send: Any) -> None:
        status = int(scope["path"].strip("/") or 200)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"" if status in (204, 304) else b"body"})

    async with serving(status_from_path, parser) as port:
        for data, status in (
            (b"HEAD / HTTP/1.1\r\nHost: h\r\n", b"200"),
            (b"GET /204 HTTP/1.1\r\nHost: h\r\n", b"204"),
        ):
            answer = await exchange(port, data + b"Connection: close\r\n\r\n")
            assert statuses(answer) == [status] and answer.endswith(b"\r\n\r\n"), answer


@BOTH
@pytest.mark.parametrize(
    "header",
    [(b"x-evil", b"a\r\nSet-Cookie: b=c"), (b"x-evil", b"a\nb"), (b"x evil", b"a"), (b"x-evil", b"a\x00")],
)
async def test_a_response_header_cannot_be_split_or_injected(
    parser: str, header: tuple[bytes, bytes]
) -> None:
    async def evil(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [header]})
        await send({"type": "http.response.body", "body": b"ok"})

    answer = await answers(parser, GET + b"\r\n", evil)
    assert statuses(answer) == [b"500"], answer
    assert b"set-cookie" not in answer.lower() and b"evil" not in answer.lower()


@BOTH
async def test_a_body_longer_than_its_content_length_is_not_sent(parser: str) -> None:
    async def liar(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"more than two"})

    answer = await answers(parser, GET + b"\r\n", liar)
    assert b"more than two" not in answer


# Where llhttp is stricter than h11: refused 400 on httptools, served on h11. Each is a shape RFC 9112
# lets a server refuse (or, for the first, obliges it to close after).
STRICTER = [
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        id="content-length-with-transfer-encoding",
    ),
    pytest.param(b"GET / HTTP/1.1\nHost: h\n\n", id="bare-lf"),
    pytest.param(GET + b"X: a\r\n folded\r\n\r\n", id="obs-fold"),
    pytest.param(b"FROB / HTTP/1.1\r\nHost: h\r\n\r\n", id="unknown-method"),
    pytest.param(b"GET / HTTP/1.9\r\nHost: h\r\n\r\n", id="http-1.9"),
    pytest.param(GET + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", id="repeated-content-length"),
]


@pytest.mark.parametrize("request_bytes", STRICTER)
async def test_where_httptools_is_stricter_than_h11(request_bytes: bytes) -> None:
    strict = await answers("httptools", request_bytes)
    lenient = await answers("h11", request_bytes)
    assert statuses(strict) == [b"400"] and b"connection: close" in strict.lower(), strict
    assert statuses(lenient) == [b"200"], lenient


async def test_content_length_with_transfer_encoding_closes_on_both() -> None:
    """The smuggling shape: one answer on either parser, the connection closed, nothing behind it served."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
    data = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += b"3\r\nabc\r\n0\r\n\r\n"
    for parser in HTTP_PARSERS:
        answer = await answers(parser, data + smuggled)
        assert len(statuses(answer)) == 1 and b"connection: close" in answer.lower(), (parser, answer)
        assert b"smuggled" not in answer


def test_without_httptools_h11_is_the_only_parser() -> None:
    """httptools missing (a platform without its wheel): the server falls back to h11, and asking for
    httptools is an error naming what is there."""
    code = (
        "import sys; sys.modules['httptools'] = None\n"
        "from mcpvisor.runtime.transports.http import _asgi_h11 as m\n"
        "assert m.HTTP_PARSERS == ('h11',) and m.DEFAULT_PARSER == 'h11', m.HTTP_PARSERS\n"
        "import trio\n"
        "try:\n"
        "    trio.run(lambda: m.serve_asgi(None, port=0, parser='httptools'))\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "unknown HTTP parser 'httptools': use one of h11" in done.stdout
