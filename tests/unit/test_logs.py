"""JSON logs: one object per line, request id attached, tokens never printed."""

from __future__ import annotations

import json
import logging

from bot.logs import REQUEST_ID, JsonFormatter, redact


def test_log_lines_are_json_with_request_id_and_tokens_redacted() -> None:
    record = logging.makeLogRecord(
        {"name": "headroom.test", "levelname": "INFO", "msg": "posting with xoxb-123-456-abc"}
    )
    token = REQUEST_ID.set("Ev123")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "Ev123" and line["level"] == "info"
    assert "xoxb-123" not in line["message"] and "xoxb-***" in line["message"]
    assert redact("app token xapp-1-A0-secret") == "app token xapp-***"
