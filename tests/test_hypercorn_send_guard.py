"""hypercorn's connection close racing our response (a pipelined bad request): no server restart.

hypercorn 0.18 closes a connection (``send_eof``) from its reading task while the app's response is
being written from another: trio's ``BusyResourceError`` escaped hypercorn's serve loop and ended the
whole server, taking every other connection with it (our runner then served again; the fuzz tests
saw a bystander's connection reset). ``_hypercorn_runner`` guards the send: the response of a
connection being closed is dropped, as for a client that left.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from test_http_framing_fuzz import ServerThread, send_and_read

# The example the framing fuzz test found (a bad request pipelined after a good one).
PIPELINED = (
    b"get /mcp?x=1 HTTP/1.0\r\n\r\nnullG\x00T  HTTP/1.1x\rTransfer-Encoding: CHUNKED\r`\xff;\xa8\xda: oUo"
    b"\r\r0\r\n\r\nget /%zz HTTP/1.0\nContent-Le"
)


@pytest.fixture
def hypercorn_server() -> Iterator[ServerThread]:
    server = ServerThread("hypercorn")
    server.start()
    yield server
    server.stop()


def test_a_close_racing_a_response_never_restarts_hypercorn(
    hypercorn_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    bystander = socket.create_connection(("127.0.0.1", hypercorn_server.port), timeout=10)
    try:
        for _ in range(200):
            send_and_read(hypercorn_server.port, PIPELINED)
        assert hypercorn_server.alive(), hypercorn_server.error
        restarts = [
            r.getMessage() for r in caplog.records if "hypercorn stopped on an error" in r.getMessage()
        ]
        assert not restarts, [r.getMessage() for r in restarts]
        # the connection opened before the examples is still served: nothing ended the server under it
        bystander.sendall(b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert bystander.recv(65536).startswith(b"HTTP/1.1 ")
    finally:
        bystander.close()
