"""Log output for the server: one JSON object per line on stderr.

The library logs with ``extra={...}`` fields (``event``, ``user_id``, ``ip``...); this
formatter turns each record into ``{"ts", "level", "logger", "msg", **fields}``. A field
whose name suggests a credential is dropped here, whatever a caller passes, so a password,
token or session ID can never reach the log through a careless ``extra``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has: they are not user fields.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
    "taskName",
}
_CREDENTIAL_WORDS = ("password", "token", "secret", "cookie", "session_id", "authorization")
_MAX_FIELD_CHARS = 200


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_MAX_FIELD_CHARS]


class JSONLineFormatter(logging.Formatter):
    """Formats a record as one JSON line with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRIBUTES or key.startswith("_") or key in entry:
                continue
            if any(word in key.lower() for word in _CREDENTIAL_WORDS):
                continue
            entry[key] = _plain(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record (authstate's and uvicorn's) to ``stream`` as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn may have attached its own handlers; ours on the root is the only output.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
