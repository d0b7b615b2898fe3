"""Building the notifications a server sends, and reading the few small params a client sends.

Progress, log and cancellation are the same in both revisions except where noted: in 2026-07-28 the log
level arrives per request in `_meta` (see `StatelessRequestContext.log_level`) instead of through
`logging/setLevel`, and a request without a level gets no log notifications at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import cattrs

from ._jsonrpc import INVALID_PARAMS, JsonRpcError, Notification, Request
from ._records import (
    LOGGING_LEVELS,
    CancelledNotificationParams,
    LoggingLevel,
    LoggingMessageNotificationParams,
    ProgressNotificationParams,
)
from ._wire import from_wire, to_wire

_RANK = {level: rank for rank, level in enumerate(LOGGING_LEVELS)}


def progress_token_of(request: Request) -> str | int | None:
    """The request's `_meta.progressToken`, or None when the client asked for no progress."""
    meta = request.params.get("_meta") if request.params is not None else None
    token = meta.get("progressToken") if isinstance(meta, Mapping) else None
    if isinstance(token, bool) or not isinstance(token, str | int):
        return None
    return token


def progress_notification(
    token: str | int, progress: float, total: float | None = None, message: str | None = None
) -> Notification:
    """`notifications/progress` for the request that sent `token`."""
    params = ProgressNotificationParams(token, progress, total, message)
    return Notification("notifications/progress", to_wire(params))


def log_notification(level: LoggingLevel, data: Any, logger: str | None = None) -> Notification:
    """`notifications/message`; check `is_level_enabled` first."""
    return Notification(
        "notifications/message", to_wire(LoggingMessageNotificationParams(level, data, logger))
    )


def cancelled_notification(request_id: str | int, reason: str | None = None) -> Notification:
    return Notification("notifications/cancelled", to_wire(CancelledNotificationParams(request_id, reason)))


def list_changed_notification(kind: Literal["tools", "resources", "prompts"]) -> Notification:
    return Notification(f"notifications/{kind}/list_changed")


def is_level_enabled(level: LoggingLevel, threshold: LoggingLevel | None) -> bool:
    """Whether a message at `level` goes out when the client asked for `threshold` (None: nothing)."""
    return threshold is not None and _RANK[level] >= _RANK[threshold]


def parse_set_level(params: Mapping[str, Any] | None) -> LoggingLevel:
    """The level of a `logging/setLevel` request; raises JsonRpcError(-32602) for anything else."""
    level = params.get("level") if params is not None else None
    if not isinstance(level, str) or level not in _RANK:
        raise JsonRpcError(
            INVALID_PARAMS, f"level must be one of {', '.join(LOGGING_LEVELS)}", {"field": "level"}
        )
    result: LoggingLevel = level
    return result


def parse_cancelled(params: Mapping[str, Any] | None) -> CancelledNotificationParams | None:
    """The params of `notifications/cancelled`, or None if unusable (a notification gets no error back)."""
    try:
        return from_wire(params if params is not None else {}, CancelledNotificationParams)
    except (cattrs.BaseValidationError, TypeError, ValueError):
        return None
