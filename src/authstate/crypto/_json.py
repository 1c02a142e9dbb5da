"""Strict JSON for token headers and claims: one spelling, one meaning.

Python's ``json`` accepts what JOSE parsers must not: duplicate member names (last wins,
a parser-differential risk), ``NaN``/``Infinity`` (a time claim that never expires),
UTF-16 when handed bytes, and lone surrogates. We refuse all of it.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn


class StrictJSONError(ValueError):
    """The text is not strict JSON; ``str(exc)`` says why (safe to log, echoes no input)."""


def _refuse_constant(name: str) -> NoReturn:
    raise StrictJSONError(f"non-standard number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise StrictJSONError("number out of range")
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise StrictJSONError("duplicate member name")
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
)


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def loads_object(data: bytes) -> dict[str, Any]:
    """Parse ``data`` as a UTF-8 JSON object under the strict rules above.

    Raises ``StrictJSONError`` (a ``ValueError``) for anything else, including nesting too
    deep for the parser and integers too long for ``int``.
    """
    try:
        # Decoding ourselves matters: json.loads(bytes) would auto-detect UTF-16/32.
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StrictJSONError("not UTF-8") from None
    if text.startswith("\ufeff"):
        raise StrictJSONError("byte order mark")
    try:
        value = _DECODER.decode(text)
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError("nested too deeply") from None
    except ValueError:  # JSONDecodeError, or int() refusing more than 4300 digits
        raise StrictJSONError("not JSON") from None
    if not isinstance(value, dict):
        raise StrictJSONError("not a JSON object")
    # Only an escape can produce a lone surrogate; skip the walk on the common path.
    if "\\u" in text and _has_lone_surrogate(value):
        raise StrictJSONError("lone surrogate")
    return value


def dumps_compact(value: object) -> bytes:
    """Compact UTF-8 JSON (no spaces, no NaN); ``ValueError``/``TypeError`` if not JSON-able."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )
