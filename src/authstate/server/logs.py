"""Log output for the server: one JSON object per line on stderr.

The library logs with ``extra={...}`` fields (``event``, ``user_id``, ``ip``...); this
formatter turns each record into ``{"ts", "level", "logger", "msg", **fields}``. A field
whose name suggests a credential is dropped here, whatever a caller passes, so a password,
token or session ID can never reach the log through a careless ``extra``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

# Attributes every LogRecord has: they are not user fields.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
    "taskName",
}
# The line's own keys: a field of the same name never replaces them.
_LINE_KEYS = frozenset({"ts", "level", "logger", "msg"})
_CREDENTIAL_WORDS = ("password", "token", "secret", "cookie", "session_id", "authorization")
_MAX_FIELD_CHARS = 200
# Field names come from code (a few dozen): each one's verdict is worked out once and
# remembered in one of these two sets (bounded: past the cap, names are judged each time).
_MAX_REMEMBERED_NAMES = 1024
_skipped_names: set[str] = set(_RECORD_ATTRIBUTES | _LINE_KEYS)
_kept_names: set[str] = set()


def _keeps(name: str) -> bool:
    """Whether a record attribute not in ``_skipped_names`` (which starts with the record's
    own attributes and the line's keys) is written as a field of the line."""
    kept = not (name.startswith("_") or any(word in name.lower() for word in _CREDENTIAL_WORDS))
    if len(_kept_names) + len(_skipped_names) < _MAX_REMEMBERED_NAMES:
        (_kept_names if kept else _skipped_names).add(name)
    return kept


# Values written as they are; anything else becomes (capped) text.
_AS_IS = frozenset({type(None), bool, int, float})


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_MAX_FIELD_CHARS]


# The text of the last whole second written: lines of one second share it.
_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``, with the
    date and time of day formatted once per second. Rounds to the microsecond as
    ``datetime.fromtimestamp`` does (half to even), then truncates to the millisecond."""
    global _second
    fraction, whole = math.modf(created)
    micros = round(fraction * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:  # before 1970
        whole, micros = whole - 1, micros + 1_000_000
    second = int(whole)
    cached = _second
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _second = (second, text)
    return f"{cached[1]}.{micros // 1000:03d}+00:00"


def _dumps(entry: dict[str, Any]) -> str:
    try:
        return orjson.dumps(entry).decode()
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, an integer over 64 bits
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


class JSONLineFormatter(logging.Formatter):
    """Formats a record as one JSON line with its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _skipped_names or (key not in _kept_names and not _keeps(key)):
                continue
            entry[key] = value if type(value) in _AS_IS else _plain(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _dumps(entry)


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log record (authstate's and uvicorn's) to ``stream`` as JSON lines.

    The line has no caller, thread or process fields, so records skip gathering them (the
    logging HOWTO's "Optimization" switches): a few microseconds of every request's access
    line. This is the server's own process; a library never changes these."""
    logging._srcfile = None  # documented switch: records skip findCaller
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined,unused-ignore]  # 3.12+
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn may have attached its own handlers; ours on the root is the only output.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
