"""Server notifications' wire forms, log-level filtering, and reading setLevel / cancelled params."""

from __future__ import annotations

import pytest
from mcpvisor.runtime.protocol import (
    INVALID_PARAMS,
    CancelledNotificationParams,
    JsonRpcError,
    Request,
    cancelled_notification,
    is_level_enabled,
    list_changed_notification,
    log_notification,
    parse_cancelled,
    parse_set_level,
    progress_notification,
    progress_token_of,
    to_json,
)


def test_progress_token_of() -> None:
    assert progress_token_of(Request(1, "tools/call", {"_meta": {"progressToken": "t"}})) == "t"
    assert progress_token_of(Request(1, "tools/call", {"_meta": {"progressToken": 3}})) == 3
    assert progress_token_of(Request(1, "tools/call", {"_meta": {"progressToken": True}})) is None
    assert progress_token_of(Request(1, "tools/call", {"_meta": {}})) is None
    assert progress_token_of(Request(1, "tools/call")) is None


def test_progress_notification_wire_form() -> None:
    assert to_json(progress_notification("t", 1, 4, "a quarter")) == {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": "t", "progress": 1, "total": 4, "message": "a quarter"},
    }
    assert progress_notification(7, 0.5).params == {"progressToken": 7, "progress": 0.5}


def test_log_cancel_and_list_changed_wire_forms() -> None:
    assert to_json(log_notification("error", {"why": "x"}, "app")) == {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "error", "data": {"why": "x"}, "logger": "app"},
    }
    assert cancelled_notification(3, "timeout").params == {"requestId": 3, "reason": "timeout"}
    assert to_json(list_changed_notification("tools")) == {
        "jsonrpc": "2.0",
        "method": "notifications/tools/list_changed",
    }


@pytest.mark.parametrize(
    ("level", "threshold", "enabled"),
    [
        ("info", "info", True),
        ("debug", "info", False),
        ("emergency", "debug", True),
        ("warning", "error", False),
        ("error", None, False),  # 2026-07-28: no level in _meta means no log notifications
    ],
)
def test_is_level_enabled(level: str, threshold: str | None, enabled: bool) -> None:
    assert is_level_enabled(level, threshold) is enabled  # type: ignore[arg-type]


def test_parse_set_level() -> None:
    assert parse_set_level({"level": "notice"}) == "notice"
    for params in (None, {}, {"level": "loud"}, {"level": 3}, {"level": []}):
        with pytest.raises(JsonRpcError) as info:
            parse_set_level(params)
        assert info.value.code == INVALID_PARAMS


def test_parse_cancelled() -> None:
    assert parse_cancelled({"requestId": 4, "reason": "user"}) == CancelledNotificationParams(4, "user")
    assert parse_cancelled({"requestId": "a"}) == CancelledNotificationParams("a")
    assert parse_cancelled({"requestId": 1.5}) is None
    assert parse_cancelled(None) == CancelledNotificationParams()
