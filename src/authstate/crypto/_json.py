"""Strict JSON for token headers and claims, JWKS documents and request bodies: one
spelling, one meaning.

Python's ``json`` accepts what JOSE parsers must not: duplicate member names (last wins,
a parser-differential risk), ``NaN``/``Infinity`` (a time claim that never expires),
UTF-16 when handed bytes, and lone surrogates. We refuse all of it, and nesting deeper
than ``MAX_DEPTH``: the parser and every walk over its result recurse once per level, and
how deep Python can recurse depends on how deep the caller already is (red team F1).

The common input, compact JSON as ``dumps_compact`` and every JOSE library write it, takes
a fast path: orjson (a C parser) parses it, and the result is kept only if orjson writes
it back byte for byte. Text that is its own canonical spelling has no duplicate member
(the copy would be shorter), no NaN, no whitespace, no escape a parser could read two
ways; it means one value, which both parsers agree on. Anything else (an orjson error, a
different spelling) takes the standard library path below, which decides and says why.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from json.scanner import make_scanner
from typing import Any, Final, NoReturn

import orjson

# Arrays and objects nested deeper than this are refused before parsing. Our tokens nest
# 2 levels ({"roles": [...]}), a JWKS 3-4, a login body 1; claims from other issuers
# rarely pass 5. 32 leaves room for all of them and is far from the ~1000 frames Python
# allows, wherever the parse is called from.
MAX_DEPTH: Final = 32


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


# A JSON string, possessive so that an unterminated one costs one linear pass (it then runs
# to the end: whatever follows is not JSON anyway and the parser says so).
_STRING: Final = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]++")
_LEVEL: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


def _too_deep(text: str) -> bool:
    """Whether arrays and objects outside strings nest deeper than ``MAX_DEPTH``."""
    # Nesting never exceeds the number of opening brackets: two C-speed counts settle
    # every ordinary token. Only text with many brackets pays for the exact scan.
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_LEVEL.__getitem__, brackets)), default=0) > MAX_DEPTH


def _has_lone_surrogate(value: object) -> bool:
    # A loop, not recursion: how deep a walk may go must not depend on the input.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


_orjson_loads = orjson.loads
_orjson_dumps = orjson.dumps
_ORJSON_ERRORS = (orjson.JSONDecodeError, orjson.JSONEncodeError)


def loads_object(data: bytes) -> dict[str, Any]:
    """Parse ``data`` as a UTF-8 JSON object under the strict rules above.

    Raises ``StrictJSONError`` (a ``ValueError``) for anything else, including arrays and
    objects nested deeper than ``MAX_DEPTH`` and integers too long for ``int``; never
    another exception, whatever ``data`` is.
    """
    # The fast path (module docstring): canonical compact text of an object, shallow
    # enough that even counting every bracket as a level stays within MAX_DEPTH.
    if (
        type(data) is bytes
        and data[:1] == b"{"
        and data.count(b"[") + data.count(b"{") <= MAX_DEPTH
    ):
        try:
            value = _orjson_loads(data)
            if type(value) is dict and _orjson_dumps(value) == data:
                return value
        except _ORJSON_ERRORS:
            pass  # the standard library path refuses it, and says why
        except RecursionError:  # not expected under MAX_DEPTH; a refusal all the same
            raise StrictJSONError("nested too deeply") from None
        except MemoryError:
            raise StrictJSONError("too large") from None
    try:
        # Decoding ourselves matters: json.loads(bytes) would auto-detect UTF-16/32.
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StrictJSONError("not UTF-8") from None
    if _too_deep(text):
        raise StrictJSONError("nested too deeply")
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
    except RecursionError:  # not expected under MAX_DEPTH; a refusal all the same
        raise StrictJSONError("nested too deeply") from None
    except MemoryError:
        raise StrictJSONError("too large") from None
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
