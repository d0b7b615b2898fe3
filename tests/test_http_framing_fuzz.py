"""A raw-bytes HTTP framing fuzzer against our HTTP/1.1 server running the MCP app (issue 7).

Random request heads, Content-Length / Transfer-Encoding combinations, chunk sizes (hex, junk,
negative, lying about their data), truncated bodies, pipelined requests and plain noise. Whatever
comes, the server answers with a status that is not 500 (a 4xx, or the app's own answer to what was
a valid request; 501 for a transfer coding it does not know) or closes the connection cleanly; it
never dies and logs no traceback, and a bystander client on its own keep-alive connection is served
after every example.

The server runs in a thread with its own ``trio.run`` for the whole test, the fuzz clients are plain
blocking sockets that send, half-close and read to the end (so no example waits on a timeout).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcpvisor.runtime.server import Server, start_server
from mcpvisor.runtime.transports.http import serve_http

BUDGET = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


class ServerThread:
    """``serve_http`` on a free loopback port in its own thread and trio run, until ``stop``."""

    def __init__(self, server: str, parser: str | None = None) -> None:
        self.server = server
        self.parser = parser
        # hypercorn keeps a connection whose client half-closed before a whole head until its
        # keep-alive timeout (ours closes it at once): short, so such examples do not wait long
        self.keep_alive = 60.0 if server == "h11" else 0.5
        self.port = 0
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30), "the fuzz server did not start"

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported by the test: the server must not die
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        server = Server("fuzz", "1.0.0")

        @server.tool
        def add(a: int, b: int) -> int:
            return a + b

        async with start_server(server) as port, trio.open_nursery() as nursery:
            self._scope = nursery.cancel_scope
            self._token = trio.lowlevel.current_trio_token()
            self.port = await nursery.start(
                lambda task_status: serve_http(
                    port,
                    port_number=0,
                    server=self.server,
                    http_parser=self.parser,
                    keep_alive=self.keep_alive,
                    body_timeout=2,
                    task_status=task_status,
                )
            )
            self._ready.set()

    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def stop(self) -> None:
        if self._token is not None and self._scope is not None and self._thread.is_alive():
            trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(30)


@pytest.fixture(scope="module", params=["h11/httptools", "h11/h11", "hypercorn"])
def fuzz_server(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    """Ours on each of its request parsers, and hypercorn."""
    name, _, parser = request.param.partition("/")
    server = ServerThread(name, parser or None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
GOOD = (
    b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Accept: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(PING), PING)
)


class Bystander:
    """One keep-alive connection that asks for the same thing after every example (on hypercorn,
    whose keep-alive here is short, and which ends a connection after 1,000 requests, a new
    connection when the last one was closed while idle)."""

    def __init__(self, port: int, reconnect: bool) -> None:
        self.port = port
        self.reconnect = reconnect
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def ask(self) -> bytes:
        if self.reconnect:
            self.sock.close()
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.buffer = b""
        self.sock.sendall(GOOD)
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            assert data, "the bystander's keep-alive connection was closed"
            self.buffer += data
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            data = self.sock.recv(65536)
            assert data, "the bystander's connection closed mid-answer"
            rest += data
        self.buffer = rest[length:]
        return head


def send_and_read(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before taking it all: fine
            pass
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass  # closed with our bytes unread: a clean close as far as the server goes
        return out


def check(server: ServerThread, bystander: Bystander, data: bytes) -> None:
    answer = send_and_read(server.port, data)
    statuses = [int(code) for code in STATUS.findall(answer)]
    assert all(code != 500 and (code < 500 or code in (501, 503)) for code in statuses), (
        data[:300],
        answer[:300],
    )
    assert server.alive(), server.error
    assert bystander.ask().startswith(b"HTTP/1.1 "), "the bystander is served"


# -- strategies ---------------------------------------------------------------------------------------

tokens = st.sampled_from([b"GET", b"POST", b"DELETE", b"PUT", b"OPTIONS", b"HEAD", b"", b"G\x00T", b"get"])
targets = st.sampled_from([b"/mcp", b"/", b"*", b"/mcp?x=1", b"/%zz", b"http://h/mcp", b"/a b", b""])
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/", b""])
eols = st.sampled_from([b"\r\n", b"\n", b"\r"])
numbers = st.one_of(
    st.integers(-5, 200).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b"abc", b"1e3", b"0x10", b" 5", b"5, 5", b"99999999999999999999", b"+3"]),
)
codings = st.sampled_from(
    [b"chunked", b"gzip", b"chunked, chunked", b"identity", b"", b"gzip, chunked", b"CHUNKED", b"chunked\x00"]
)
plain_headers = st.sampled_from(
    [
        (b"Host", b"127.0.0.1"),
        (b"Content-Type", b"application/json"),
        (b"Accept", b"application/json, text/event-stream"),
        (b"Connection", b"close"),
        (b"Connection", b"keep-alive"),
        (b"Mcp-Session-Id", b"nope"),
        (b"MCP-Protocol-Version", b"2025-11-25"),
        (b"Expect", b"100-continue"),
        (b"X-Junk", b"\x00\x7f\xff"),
        (b"Bad Name", b"v"),
        (b"", b"empty name"),
        (b" folded", b"continuation"),
    ]
)
headers = st.lists(
    st.one_of(
        plain_headers,
        st.tuples(st.just(b"Content-Length"), numbers),
        st.tuples(st.just(b"Transfer-Encoding"), codings),
        st.tuples(st.binary(max_size=12), st.binary(max_size=24)),
    ),
    max_size=8,
)
chunk = st.tuples(
    st.one_of(
        st.integers(0, 64).map(lambda n: b"%x" % n),
        st.sampled_from([b"zz", b"-1", b"", b" 5", b"5;ext=1", b"5 ; x", b"ffffffffffffffffffff", b"0x5"]),
    ),
    st.binary(max_size=64),
)


@st.composite
def requests(draw: Any) -> bytes:
    eol = draw(eols)
    line = draw(tokens) + b" " + draw(targets) + b" " + draw(versions)
    head = line + eol + b"".join(name + b": " + value + eol for name, value in draw(headers)) + eol
    if draw(st.booleans()):
        body = b"".join(size + b"\r\n" + data + b"\r\n" for size, data in draw(st.lists(chunk, max_size=4)))
        if draw(st.booleans()):
            body += b"0\r\n\r\n"
    else:
        body = draw(st.sampled_from([PING, b"", b"{", b"[]", b"null", b"\xff\xfe"]))
    message = head + body
    cut = draw(st.integers(0, len(message)))
    return message[:cut] if draw(st.booleans()) else message


@given(data=requests())
@BUDGET
def test_random_requests_get_no_500(
    fuzz_server: ServerThread, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    bystander = _bystander(fuzz_server)
    check(fuzz_server, bystander, data)
    if fuzz_server.server == "h11":  # (hypercorn's send may raise after a client left, seen once)
        assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


@given(data=st.lists(requests(), min_size=2, max_size=3).map(b"".join))
@BUDGET
def test_pipelined_random_requests_get_no_500(fuzz_server: ServerThread, data: bytes) -> None:
    check(fuzz_server, _bystander(fuzz_server), data)


@given(
    data=st.one_of(st.binary(max_size=512), st.integers(0, len(GOOD)).map(lambda n: GOOD[:n] + b"\x00junk"))
)
@BUDGET
def test_noise_gets_no_500(fuzz_server: ServerThread, data: bytes) -> None:
    check(fuzz_server, _bystander(fuzz_server), data)


_BYSTANDERS: dict[int, Bystander] = {}


def _bystander(server: ServerThread) -> Bystander:
    """One bystander connection per server, kept across the examples (that is the point)."""
    if server.port not in _BYSTANDERS:
        _BYSTANDERS[server.port] = Bystander(server.port, reconnect=server.server != "h11")
    return _BYSTANDERS[server.port]
