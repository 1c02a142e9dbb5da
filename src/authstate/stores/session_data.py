"""Session data as every store keeps it: one JSON object per session or refresh family,
updated key by key under one rule, capped in size.

The rule for concurrent updates is *last writer wins, per key*: an update names the keys it
sets and the keys it removes, and the store applies exactly those to the data as stored at
that moment, atomically (a transaction, a row lock, or a compare-and-set retried). Two
updates of different keys both stay; of the same key, the one the store applied last stays.

The cap measures the whole object as compact UTF-8 JSON (``size``), after the update: an
update that would pass it raises ``SessionDataTooLarge`` and writes nothing. Values must be
JSON as Python's ``json`` reads it back unchanged (``check_value``): a ``set``, ``bytes``, a
``datetime``, a non-string key or NaN is refused before anything is written, rather than
silently converted. A tuple is accepted and comes back as a list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from authstate.errors import SessionDataTooLarge

# Deeper nesting is refused: the JSON parsers of every reader recurse.
MAX_DEPTH = 32
_NOT_JSON = "is a {}, not JSON (use dict, list, str, int, float, bool or None)"


def check_value(value: Any, where: str, depth: int = 0) -> None:
    """Raise ``TypeError`` (not a JSON type) or ``ValueError`` (NaN, infinity, a lone
    surrogate, nesting deeper than ``MAX_DEPTH``) unless ``value`` is plain JSON."""
    if depth > MAX_DEPTH:
        raise ValueError(f"session data {where} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"session data {where} is {value!r}, which JSON cannot hold")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_value(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"session data {where} has a key {key!r} that is not a string")
            _check_text(key, f"{where} key")
            check_value(item, f"{where}[{key!r}]", depth + 1)
    else:
        raise TypeError(f"session data {where} " + _NOT_JSON.format(type(value).__name__))


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"session data {where} is not valid Unicode text") from None


def check_update(changes: Mapping[str, Any], remove: Collection[str]) -> None:
    """Refuse an update before it reaches the store: keys must be strings, values JSON, and
    no key both set and removed."""
    for key in (*changes, *remove):
        if not isinstance(key, str):
            raise TypeError(f"session data key {key!r} is not a string")
        _check_text(key, "key")
    for key, value in changes.items():
        check_value(value, repr(key))
    both = set(changes) & set(remove)
    if both:
        raise ValueError(f"session data key {sorted(both)[0]!r} is both set and removed")


def size(data: Mapping[str, Any]) -> int:
    """What the cap measures: the bytes of ``data`` as compact UTF-8 JSON."""
    text = json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return len(text.encode("utf-8"))


def merge(
    current: Mapping[str, Any],
    changes: Mapping[str, Any],
    remove: Collection[str],
    max_bytes: int,
) -> tuple[dict[str, Any], str]:
    """``current`` with ``remove`` dropped and ``changes`` set, and the text to store (ASCII
    JSON, as every store writes ``SessionRecord.data``: NUL stays escaped, which PostgreSQL's
    ``text`` needs); ``SessionDataTooLarge`` when it is over ``max_bytes`` (``size``)."""
    merged = {key: value for key, value in current.items() if key not in remove}
    merged.update(changes)
    measured = size(merged)
    if measured > max_bytes:
        raise SessionDataTooLarge(
            f"session data would be {measured} bytes, over the cap of {max_bytes}"
            " (AUTHSTATE_SESSION_DATA_MAX_BYTES); nothing was written"
        )
    text = json.dumps(merged)
    # Read back from the text: tuples become lists, as in every store.
    return json.loads(text), text
