"""JSON logs on stderr, with anything that looks like a Slack token redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

#: the Slack event id / command trigger / action being handled, on every log line it causes
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_TOKEN = re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]+")
#: other secrets people paste with commands and logs: API keys, Hugging Face and AWS keys, key=value pairs
_SECRETS = re.compile(
    r"\b(sk-|hf_|AKIA|ASIA)[A-Za-z0-9_\-]{8,}"
    r"|(?<=--api-key[ =])\S+|(?<=--hf-token[ =])\S+"
    r"|(?i:(?<=token=)|(?<=key=)|(?<=secret=)|(?<=password=))[^\s&'\"]+"
)


def redact(text: str) -> str:
    """Tokens and keys out of anything logged: Slack tokens keep their prefix, other secrets become ***."""
    return _SECRETS.sub("***", _TOKEN.sub(r"\1-***", text))


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
