"""The lean HTTP/1.1 server (``_asgi_h11``), on real loopback sockets with raw HTTP bytes."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
import trio
from mcpvisor.runtime.transports.http import serve_http
from mcpvisor.runtime.transports.http._asgi_h11 import serve_asgi

#: every test here runs on each request parser of our server (conftest.http_parser)
pytestmark = pytest.mark.usefixtures("http_parser")

Scope = dict[str, Any]


@asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(
            functools.partial(serve_asgi, app, host="127.0.0.1", port=0, **options)
        )
        yield port
        nursery.cancel_scope.cancel()


async def read_until(stream: trio.SocketStream, marker: bytes, buffer: bytearray) -> bytes:
    """Read until ``marker`` is in the buffer; return up to and including it."""
    with trio.fail_after(5):
        while marker not in buffer:
            data = await stream.receive_some(65536)
            if not data:
                raise EOFError(bytes(buffer))
            buffer += data
    end = buffer.index(marker) + len(marker)
    out = bytes(buffer[:end])
    del buffer[:end]
    return out


async def read_to_eof(stream: trio.SocketStream) -> bytes:
    out = b""
    with trio.fail_after(5):
        while data := await stream.receive_some(65536):
            out += data
    return out


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    """Answers with method, path, query and the whole body it read."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} ".encode() + body
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-seen", b"yes")]})
    await send({"type": "http.response.body", "body": text})


async def test_keep_alive_serves_requests_one_after_another() -> None:
    async with serving(echo) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = bytearray()
        for n in range(3):
            await stream.send_all(
                f"POST /a%20b?x={n} HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc".encode()
            )
            head = await read_until(stream, b"\r\n\r\n", buffer)
            assert head.startswith(b"HTTP/1.1 200 ") and b"x-seen: yes" in head.lower()
            expected = f"POST /a b x={n} abc".encode()
            assert f"content-length: {len(expected)}".encode() in head.lower()
            assert await read_until(stream, expected, buffer) == expected
        await stream.aclose()


async def test_a_chunked_request_body_is_read_whole() -> None:
    async with serving(echo) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        head = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        request = head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        await stream.send_all(request)
        buffer = bytearray()
        await read_until(stream, b"\r\n\r\n", buffer)
        assert await read_until(stream, b"abcde", buffer) == b"POST /  abcde"


async def test_a_streamed_response_arrives_chunk_by_chunk_and_a_disconnect_reaches_the_app() -> None:
    step = trio.Event()
    disconnected = trio.Event()

    async def stream_app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await step.wait()
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": True})
        assert (await receive())["type"] == "http.disconnect"  # waits until the client leaves
        disconnected.set()

    async with serving(stream_app) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        buffer = bytearray()
        head = await read_until(stream, b"\r\n\r\n", buffer)
        assert b"transfer-encoding: chunked" in head.lower()
        await read_until(stream, b"data: one\n\n", buffer)  # before the second chunk exists
        step.set()
        await read_until(stream, b"data: two\n\n", buffer)
        await stream.aclose()
        with trio.fail_after(5):
            await disconnected.wait()


async def test_an_app_error_is_500_and_no_response_is_500() -> None:
    async def broken(scope: Scope, receive: Any, send: Any) -> None:
        raise RuntimeError("secret")

    async def silent(scope: Scope, receive: Any, send: Any) -> None:
        return

    for app in (broken, silent):
        async with serving(app) as port:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            answer = await read_to_eof(stream)  # answered, then closed
            assert answer.startswith(b"HTTP/1.1 500 ") and b"secret" not in answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", b"431"),
    ],
)
async def test_bad_requests_are_refused_and_closed(request_bytes: bytes, status: bytes) -> None:
    async with serving(echo) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(request_bytes)
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 " + status)


async def test_an_idle_connection_is_closed_after_keep_alive() -> None:
    async with serving(echo, keep_alive=0.2) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        started = trio.current_time()
        assert await read_to_eof(stream) == b""  # closed by the server, nothing said
        assert 0.15 < trio.current_time() - started < 3


async def test_connection_close_is_honoured() -> None:
    async with serving(echo) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"GET /  ")


async def test_serve_http_validates_its_server_and_keep_alive() -> None:
    with pytest.raises(ValueError, match="unknown HTTP server 'nginx'"):
        await serve_http(None, server="nginx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keep_alive"):
        await serve_asgi(echo, port=0, keep_alive=0)


async def test_a_body_the_app_did_not_read_does_not_cost_the_connection() -> None:
    async def no_reader(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serving(no_reader) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = bytearray()
        for request in [
            b"DELETE / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        ]:
            await stream.send_all(request)  # one connection: each answered, none closes it
            assert (await read_until(stream, b"\r\n\r\n", buffer)).startswith(b"HTTP/1.1 204 ")
        await stream.aclose()


async def test_the_scope_follows_the_asgi_spec() -> None:
    seen: list[Scope] = []

    async def record(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        await echo(scope, receive, send)

    async with serving(record) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            b"GET /m%C3%BCnchen/a%2Fb?q=1&r=%20 HTTP/1.1\r\nHost: h\r\nX-Mixed-Case: V\r\n\r\n"
        )
        await read_until(stream, b"\r\n\r\n", bytearray())
        local = stream.socket.getsockname()
        await stream.aclose()
    (scope,) = seen
    assert scope["type"] == "http" and scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1" and scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["path"] == "/münchen/a/b" and scope["raw_path"] == b"/m%C3%BCnchen/a%2Fb"
    assert scope["query_string"] == b"q=1&r=%20" and scope["root_path"] == ""
    assert (b"x-mixed-case", b"V") in scope["headers"] and (b"host", b"h") in scope["headers"]
    assert scope["client"] == (local[0], local[1]) and scope["server"] == ("127.0.0.1", port)


async def test_an_http_1_0_request_is_answered_then_closed() -> None:
    async with serving(echo) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /old HTTP/1.0\r\n\r\n")
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"GET /old  ")


async def test_a_client_leaving_an_open_stream_ends_the_app_promptly() -> None:
    """The MCP app's pattern: it waits on its own work and watches ``receive`` for the disconnect."""
    started = trio.Event()
    ended = trio.Event()

    async def forever_stream(scope: Scope, receive: Any, send: Any) -> None:
        await receive()  # the (empty) body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: hi\n\n", "more_body": True})
        started.set()
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                assert (await receive())["type"] == "http.disconnect"
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await trio.sleep_forever()  # the answer that never comes
        ended.set()

    async with serving(forever_stream) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await read_until(stream, b"data: hi\n\n", bytearray())
        await started.wait()
        await stream.aclose()
        with trio.fail_after(1):
            await ended.wait()


async def test_a_client_flooding_an_open_stream_counts_as_gone_and_is_closed() -> None:
    told: list[str] = []

    async def open_stream(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"open", "more_body": True})
        told.append((await receive())["type"])

    async with serving(open_stream, max_header_bytes=1024) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await read_until(stream, b"open", bytearray())
        with trio.fail_after(5), contextlib.suppress(trio.BrokenResourceError):
            for _ in range(100):  # far past what a pipelined request head may be
                await stream.send_all(b"x" * 65536)
            await read_to_eof(stream)  # (or a reset: the server closed with our bytes unread)
        assert told == ["http.disconnect"]


async def test_an_oversized_body_is_413_from_the_mcp_app_chunked_or_not() -> None:
    from mcpvisor.runtime.server import Server, start_server

    post = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\n"
    )
    big = b"[" + b" " * 3000 + b"]"
    chunked = (
        post
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (big[:1500], big[1500:]))
        + b"0\r\n\r\n"
    )
    sized = post + f"Content-Length: {len(big)}\r\n\r\n".encode() + big
    async with start_server(Server("limits", "1.0.0")) as mcp, trio.open_nursery() as nursery:
        port = await nursery.start(
            functools.partial(serve_http, mcp, port_number=0, max_body_bytes=1000)  # type: ignore[arg-type]
        )
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = bytearray()
        for request in (sized, chunked):  # one connection: the unread rest is skipped, not fatal
            await stream.send_all(request)
            head = await read_until(stream, b"\r\n\r\n", buffer)
            assert head.startswith(b"HTTP/1.1 413 ")
            await read_until(stream, b'Payload Too Large"}}', buffer)
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_stopping_closes_idle_connections_at_once_and_accepts_no_more() -> None:
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(functools.partial(serve_asgi, echo, port=0, keep_alive=30))
        idle = await trio.open_tcp_stream("127.0.0.1", port)
        await idle.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await read_until(idle, b"GET /  ", bytearray())  # served; now idle for up to 30 s
        started = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - started < 0.5  # not the keep-alive, not the grace
    assert await read_to_eof(idle) == b""
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


async def test_stopping_lets_a_request_in_flight_finish_within_the_grace() -> None:
    arrived = trio.Event()

    async def slow(scope: Scope, receive: Any, send: Any) -> None:
        arrived.set()
        await trio.sleep(0.2)
        await echo(scope, receive, send)

    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(functools.partial(serve_asgi, slow, port=0, grace=5))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /late HTTP/1.1\r\nHost: h\r\n\r\n")
        await arrived.wait()
        nursery.cancel_scope.cancel()
    answer = await read_to_eof(stream)  # the whole answer, marked as the connection's last
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"GET /late  ")
    assert b"connection: close" in answer.lower()


async def test_stopping_cuts_what_outlasts_the_grace() -> None:
    arrived = trio.Event()
    cut = trio.Event()

    async def stuck(scope: Scope, receive: Any, send: Any) -> None:
        arrived.set()
        try:
            await trio.sleep_forever()
        finally:
            cut.set()

    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(functools.partial(serve_asgi, stuck, port=0, grace=0.2))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await arrived.wait()
        started = trio.current_time()
        nursery.cancel_scope.cancel()
    assert cut.is_set() and 0.15 < trio.current_time() - started < 1.5
    assert await read_to_eof(stream) == b""


async def test_serve_asgi_validates_its_grace() -> None:
    with pytest.raises(ValueError, match="grace"):
        await serve_asgi(echo, port=0, grace=-1)


async def test_an_orderly_stop_lets_a_call_in_flight_answer() -> None:
    """``serve(stop=...)`` (what SIGTERM sets): the tree is still up during the grace, so the call ends."""
    from _http_messages import stateless, stateless_headers
    from mcpvisor.runtime.server import Server
    from mcpvisor.runtime.transports._run import serve

    server = Server("stopping", "1.0.0")
    entered = trio.Event()

    @server.tool
    async def slow() -> str:
        entered.set()
        await trio.sleep(0.3)
        return "finished"

    stop = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url: str = await nursery.start(
                functools.partial(serve, server, transport="http", port=0, stop=stop)
            )

            async def stop_once_entered() -> None:
                await entered.wait()
                stop.set()

            nursery.start_soon(stop_once_entered)
            async with httpx2.AsyncClient() as client:
                call = stateless("tools/call", {"name": "slow", "arguments": {}})
                response = await client.post(url, json=call, headers=stateless_headers("tools/call", "slow"))
    assert stop.is_set() and response.status_code == 200
    assert response.json()["result"]["content"][0]["text"] == "finished"


async def test_the_body_reaches_the_app_as_it_arrives() -> None:
    """A body already whole is one message; one still arriving comes in parts, ``more_body`` set."""
    messages: list[tuple[bytes, bool]] = []
    first_part = trio.Event()

    async def recorder(scope: Scope, receive: Any, send: Any) -> None:
        messages.clear()
        while True:
            message = await receive()
            messages.append((message["body"], message["more_body"]))
            first_part.set()
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serving(recorder) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        buffer = bytearray()
        await stream.send_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        await read_until(stream, b"\r\n\r\n", buffer)
        assert messages == [(b"abc", False)]
        first_part = trio.Event()
        await stream.send_all(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        with trio.fail_after(5):
            await first_part.wait()
        assert messages == [(b"abc", True)]  # the app has the first chunk before the rest exists
        await stream.send_all(b"2\r\nde\r\n0\r\n\r\n")
        assert (await read_until(stream, b"\r\n\r\n", buffer)).startswith(b"HTTP/1.1 204 ")
        assert messages in ([(b"abc", True), (b"de", True), (b"", False)], [(b"abc", True), (b"de", False)])
        await stream.aclose()
