"""Choose a backend by URL (``memory://``, ``sqlite:///path``, ``redis://host:port/db``) or by object.

The SQLite and Redis modules are imported only when their URL is used, so the Redis client is needed
only by applications that use Redis.
"""

from __future__ import annotations

import urllib.parse
from typing import Final

from ._behaviours import SessionStateStore, TaskBackend
from ._errors import UnsupportedBackendURL

__all__ = ["session_store_from_url", "task_backend_from_url"]

SUPPORTED_FORMS: Final = (
    "memory://",
    "sqlite:///relative/or/absolute/path.db (sqlite:////abs/path.db for an absolute path)",
    "redis://host:port/db (rediss:// for TLS; redis://:password@host:port/db)",
)


def _unsupported(url: str, why: str) -> UnsupportedBackendURL:
    forms = "\n  ".join(SUPPORTED_FORMS)
    return UnsupportedBackendURL(f"backend URL {url!r}: {why}. Supported forms:\n  {forms}")


def _parse(url: str) -> tuple[str, str]:
    """The scheme and its target (a file path for sqlite, the URL itself for redis)."""
    if not isinstance(url, str):
        raise TypeError(f"a backend must be a URL string or a backend object, got {type(url).__qualname__}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise _unsupported(url, "not a URL (no scheme://)")
    if scheme == "memory":
        if rest.strip("/"):
            raise _unsupported(url, "memory:// takes no host or path")
        return scheme, ""
    if scheme == "sqlite":
        if not rest.startswith("/") or not rest.strip("/"):
            raise _unsupported(url, "sqlite needs a file path after three slashes")
        path = urllib.parse.unquote(rest[1:])  # sqlite:///x.db -> x.db; sqlite:////abs -> /abs
        return scheme, path
    if scheme in ("redis", "rediss"):
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise _unsupported(url, f"bad port ({exc})") from None
        if not parts.hostname:
            raise _unsupported(url, "redis needs a host")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise _unsupported(url, f"the database must be a number, got {db!r}")
        del port
        return scheme, url
    raise _unsupported(url, f"unknown scheme {scheme!r}")


def session_store_from_url(backend: str | SessionStateStore) -> SessionStateStore:
    """A ``SessionStateStore`` for ``backend``: a URL, or an already-built store returned as is."""
    if not isinstance(backend, str):
        if not isinstance(backend, SessionStateStore):
            raise TypeError(
                f"{backend!r} is not a SessionStateStore (it needs async get, put, delete, keys,"
                " drop_session, expire and aclose); pass one or a backend URL"
            )
        return backend
    scheme, target = _parse(backend)
    if scheme == "memory":
        from ._memory import MemorySessionStore

        return MemorySessionStore()
    if scheme == "sqlite":
        from ._sqlite import SQLiteSessionStore

        return SQLiteSessionStore(target)
    from ._redis import RedisSessionStore  # type: ignore[import-not-found, unused-ignore]

    store: SessionStateStore = RedisSessionStore(target)
    return store


def task_backend_from_url(backend: str | TaskBackend) -> TaskBackend:
    """A ``TaskBackend`` for ``backend``: a URL, or an already-built backend returned as is."""
    if not isinstance(backend, str):
        if not isinstance(backend, TaskBackend):
            raise TypeError(
                f"{backend!r} is not a TaskBackend (it needs async create, get, update, list, delete,"
                " expire and aclose); pass one or a backend URL"
            )
        return backend
    scheme, target = _parse(backend)
    if scheme == "memory":
        from ._memory import MemoryTaskBackend

        return MemoryTaskBackend()
    if scheme == "sqlite":
        from ._sqlite import SQLiteTaskBackend

        return SQLiteTaskBackend(target)
    from ._redis import RedisTaskBackend  # type: ignore[import-not-found, unused-ignore]

    tasks: TaskBackend = RedisTaskBackend(target)
    return tasks
