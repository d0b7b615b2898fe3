"""The HTTP transport as a subpackage: the old import path keeps every name, and `HttpOptions` is the
one declaration of the app's options behind `McpHttpApp`, `mcp_asgi_app` and `serve_http`."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from _asgi_client import request
from _fake_port import FakePort, fake_port
from _http_messages import INIT
from mcpvisor.runtime.transports.http import HttpOptions, McpHttpApp, mcp_asgi_app, serve_http

#: every public name `runtime/transports/http.py` defined before it became a package
OLD_PUBLIC_NAMES = [
    "BATCH_VERSION",
    "HTTP_SERVERS",
    "LAST_EVENT_ID_HEADER",
    "READY_WAIT",
    "SESSION_HEADER",
    "VERSION_HEADER",
    "ListenError",
    "McpHttpApp",
    "logger",
    "mcp_asgi_app",
    "open_listeners",
    "serve_http",
]
PACKAGE = Path(__file__).resolve().parent.parent / "runtime" / "transports" / "http"
#: modules moved in whole from the old flat layout, longer than the split's own
MOVED_WHOLE = {"_asgi_h11.py", "_connection_limits.py", "_events.py", "_streaming.py"}


@pytest.fixture
async def port() -> AsyncIterator[FakePort]:
    async with fake_port() as p:
        yield p


@pytest.mark.parametrize("name", OLD_PUBLIC_NAMES)
def test_every_old_public_name_is_importable_from_the_old_path(name: str) -> None:
    module = importlib.import_module("mcpvisor.runtime.transports.http")
    assert getattr(module, name) is not None
    exec(f"from mcpvisor.runtime.transports.http import {name}", {})


def test_old_values_are_unchanged() -> None:
    from mcpvisor.runtime.transports import http

    assert (http.SESSION_HEADER, http.VERSION_HEADER, http.LAST_EVENT_ID_HEADER) == (
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    )
    assert http.BATCH_VERSION == "2025-03-26"
    assert http.READY_WAIT == 0.05
    assert http.HTTP_SERVERS == ("h11", "hypercorn")
    assert http.logger.name == "mcpvisor.runtime.transports"


def test_the_split_modules_are_small() -> None:
    long = {
        p.name: n
        for p in PACKAGE.glob("*.py")
        if p.name not in MOVED_WHOLE and (n := p.read_text(encoding="utf-8").count("\n")) > 400
    }
    assert long == {}


async def test_keywords_and_a_record_configure_the_same_app(port: FakePort) -> None:
    by_keyword = mcp_asgi_app(port, path="/x/", json_response=True, retry_ms=5)
    by_record = mcp_asgi_app(port, HttpOptions(path="/x/", json_response=True, retry_ms=5))
    by_class = McpHttpApp(port, path="/x/", json_response=True, retry_ms=5)
    assert by_keyword.options == by_record.options == by_class.options
    assert by_keyword.options.json_response is True
    assert by_keyword.state.path == "/x"


async def test_keywords_override_the_record(port: FakePort) -> None:
    app = mcp_asgi_app(port, HttpOptions(retry_ms=5, keepalive=2.0), retry_ms=7)
    assert (app.options.retry_ms, app.options.keepalive) == (7, 2.0)


async def test_an_unknown_option_is_a_type_error_naming_the_options(port: FakePort) -> None:
    with pytest.raises(
        TypeError, match=r"mcp_asgi_app: unknown option\(s\) jsonresponse; the options are: path"
    ):
        mcp_asgi_app(port, jsonresponse=True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("abandon_after", -1.0, "abandon_after must be >= 0 seconds"),
        ("sse_poll_after", -1.0, "sse_poll_after must be >= 0 seconds"),
        ("keepalive", 0.0, "keepalive must be > 0 seconds"),
    ],
)
async def test_bad_values_fail_at_every_door(port: FakePort, field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpOptions(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        mcp_asgi_app(port, **{field: value})


async def test_options_apply_to_requests(port: FakePort) -> None:
    app = mcp_asgi_app(port, HttpOptions(path="/elsewhere", max_body_bytes=10))
    status, _, _ = await request(app, "POST", path="/mcp", headers={"accept": "application/json"}, body=INIT)
    assert status == 404
    status, _, _ = await request(
        app, "POST", path="/elsewhere", headers={"accept": "application/json"}, body=INIT
    )
    assert status == 413


async def _status_of(bound: int, path: str) -> bytes:
    """The status line of a JSON POST of `initialize` to `path` on the loopback server at `bound`."""
    body = json.dumps(INIT).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{bound}\r\naccept: application/json\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    stream = await trio.open_tcp_stream("127.0.0.1", bound)
    async with stream:
        await stream.send_all(head.encode() + body)
        data = b""
        with trio.fail_after(10):
            while b"\r\n" not in data:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                data += chunk
    return data.split(b"\r\n", 1)[0]


async def test_serve_http_takes_a_record_and_keywords(port: FakePort) -> None:
    with pytest.raises(TypeError, match="serve_http: unknown option"):
        await serve_http(port, port=0, bogus=1)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            functools.partial(serve_http, port, port=0, options=HttpOptions(path="/p"), max_body_bytes=10)
        )
        assert await _status_of(bound, "/mcp") == b"HTTP/1.1 404 "
        assert await _status_of(bound, "/p") == b"HTTP/1.1 413 "
        nursery.cancel_scope.cancel()
