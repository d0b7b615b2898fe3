"""The Redis backends: ``RedisSessionStore`` and ``RedisTaskBackend`` (for many machines).

Each lives in its own module (``_redis_session_store``, ``_redis_task_backend``) over one shared
connection helper (``_redis_connection``, which also says why the client is valkey-glide). This module
is the one place the package imports them from.
"""

from __future__ import annotations

from ._redis_session_store import RedisSessionStore
from ._redis_task_backend import RedisTaskBackend

__all__ = ["RedisSessionStore", "RedisTaskBackend"]
