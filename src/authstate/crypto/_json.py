"""Strict JSON for token headers and claims: one spelling, one meaning.

Python's ``json`` accepts what JOSE parsers must not: duplicate member names (last wins,
a parser-differential risk), ``NaN``/``Infinity`` (a time claim that never expires),
UTF-16 when handed bytes, and lone surrogates. We refuse all of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from json.scanner import make_scanner
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
# What _DECODER.decode runs (C when available); typeshed types its argument oddly.
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = make_scanner(_DECODER)  # type: ignore[arg-type]


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
    try:
        if text[:1] == "{":
            # The common case, a bare object: the C scanner directly, without the
            # whitespace regexes of JSONDecoder.decode. Anything else takes the long way.
            value, end = _SCAN_ONCE(text, 0)
            if end != len(text):
                value = _DECODER.decode(text)  # trailing whitespace, or extra data refused
        elif text.startswith("\ufeff"):
            raise StrictJSONError("byte order mark")
        else:
            value = _DECODER.decode(text)
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError("nested too deeply") from None
    except (ValueError, StopIteration):  # JSONDecodeError, int() refusing > 4300 digits
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
