"""Shared fixtures.

``redis_server``: one private ``redis-server`` per test session (see ``_redis_server.py``), yielding its
URL. Tests isolate their data with a key prefix of their own (``redis_prefix``), never by flushing.
Without the binary the Redis tests are skipped locally, but fail under ``CI=true``: CI must never pass
by silently not testing the Redis backends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _redis_server import require_redis_server, start_redis_server

_INSTALL_HINT = (
    "redis-server is not on PATH; install it (Debian/Ubuntu: `apt-get install redis-server`, "
    "macOS: `brew install redis`) to run the Redis backend tests"
)


def pytest_configure(config: pytest.Config) -> None:
    # valkey-glide 2.x puts proxy modules for its old import paths (``glide.async_commands...``) into
    # sys.modules, and each warns once when any attribute is read. Our code imports only from
    # ``glide``; the warnings come from hypothesis reading ``__file__`` of every loaded module (its
    # scan for constants), so they are ignored only when raised from that scan: a deprecated import
    # anywhere else, ours included, still shows.
    config.addinivalue_line(
        "filterwarnings",
        r"ignore:Importing from 'glide\.:DeprecationWarning:hypothesis\.internal\.conjecture\.providers",
    )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_redis_server(_INSTALL_HINT)
    server = start_redis_server(binary, Path(tmp_path_factory.mktemp("redis")))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses, so tests sharing the server never see each other's data."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["httptools", "h11"])
def http_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once on each request parser of our HTTP server (``_asgi_h11.HTTP_PARSERS``): the
    default one is httptools, and h11 (its fallback) must keep every guarantee too. Servers the test
    starts in this process without naming a parser use this one."""
    from mcpvisor.runtime.transports.http import _asgi_h11

    parser: str = request.param
    assert parser in _asgi_h11.HTTP_PARSERS, f"{parser} is not installed"
    monkeypatch.setattr(_asgi_h11, "DEFAULT_PARSER", parser)
    return parser
