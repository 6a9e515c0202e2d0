"""JSON logs on stderr, with anything that looks like a Slack token redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from engine.paste_patterns import redact as redact_secrets

#: the Slack event id / command trigger / action being handled, on every log line it causes
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_TOKEN = re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]+")


def redact(text: str) -> str:
    """Tokens and keys out of anything logged: Slack tokens keep their prefix; every other secret a paste
    may carry (the engine's list: Hugging Face, AWS, API keys, bearer tokens, URL credentials) becomes ***."""
    return redact_secrets(_TOKEN.sub(r"\1-***", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra` fields."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
