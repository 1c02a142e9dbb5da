"""Strict JSON: one spelling, one meaning, no surprises from Python's json module."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import authstate.crypto._json as json_module
from authstate.crypto._json import MAX_DEPTH, StrictJSONError, dumps_compact, loads_object
from tests.crypto.forge import in_a_deep_stack, nested_json
from tests.crypto.json_shapes import Shape, json_objects


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"a":1,"a":1}', "duplicate"),
        (b'{"a":{"b":1,"b":2}}', "duplicate"),
        (b'[{"a":1,"a":2}]', "duplicate"),
        (b'{"a":NaN}', "non-standard"),
        (b'{"a":Infinity}', "non-standard"),
        (b'{"a":-Infinity}', "non-standard"),
        (b'{"a":1e999}', "range"),
        (b'{"a":-1e999}', "range"),
        ('\ufeff{"a":1}'.encode(), "byte order mark"),
        ('{"a":1}'.encode("utf-16"), "UTF-8"),
        ('{"a":1}'.encode("utf-16-le"), "JSON"),
        ('{"a":1}'.encode("utf-32"), "UTF-8"),
        (b'{"a":"\xc0\xaf"}', "UTF-8"),
        (b'{"a":"\xed\xa0\x80"}', "UTF-8"),  # a surrogate encoded directly
        (b'{"a":"\\ud800"}', "surrogate"),
        (b'{"a":"\\udc00x"}', "surrogate"),
        (b'{"\\ud800":1}', "surrogate"),
        (b'{"a":["\\ud800"]}', "surrogate"),
        (b'{"a":' + b"9" * 5000 + b"}", "JSON"),  # int() refuses > 4300 digits
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
        (b"[]", "object"),
        (b'"x"', "object"),
        (b"1", "object"),
        (b"null", "object"),
        (b"", "JSON"),
        (b'{"a":1} {}', "JSON"),
        (b"{'a':1}", "JSON"),
    ],
)
def test_strict_json_refuses_what_pythons_json_would_let_through(data: bytes, why: str) -> None:
    with pytest.raises(StrictJSONError, match=why):
        loads_object(data)


def test_strict_json_accepts_plain_objects_whitespace_and_surrogate_pairs() -> None:
    assert loads_object(b' {\n\t"a" : [1, 2.5, true, null],"b":{}} ') == {
        "a": [1, 2.5, True, None],
        "b": {},
    }
    assert loads_object(b'{"smile":"\\ud83d\\ude00"}') == {"smile": "\U0001f600"}
    assert loads_object('{"é":"ü"}'.encode()) == {"é": "ü"}


def test_compact_json_has_no_spaces_keeps_unicode_and_refuses_nan() -> None:
    assert dumps_compact({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()
    with pytest.raises(ValueError):
        dumps_compact({"exp": float("nan")})


# -- nesting (red team F1) ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_nesting_deeper_than_the_limit_is_refused_at_every_depth(kind: str) -> None:
    """F1: one \\u escape under 450-900 levels took the lone-surrogate walk past the
    recursion limit (RecursionError, outside the guard). Every depth from MAX_DEPTH + 1 up
    to beyond what the C scanner refuses by itself is now the same StrictJSONError, with
    and without an escape, with a lone surrogate at the bottom too."""
    for depth in [*range(MAX_DEPTH + 1, 200, 7), *range(200, 1300, 50), 5_000, 100_000]:
        for inner in (b'"\\u0041"', b'"\\ud800"', b"1", b"[]", b"{}"):
            with pytest.raises(StrictJSONError, match="nested too deeply"):
                loads_object(nested_json(depth, inner, kind=kind))


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_nesting_up_to_the_limit_is_parsed_even_from_a_deep_stack(kind: str) -> None:
    """MAX_DEPTH levels parse (and a lone surrogate at the bottom is still found) however
    deep the caller already is: the limit does not depend on the stack."""
    text = nested_json(MAX_DEPTH, kind=kind)
    value = in_a_deep_stack(lambda: loads_object(text))
    for _ in range(MAX_DEPTH):
        value = value["a"] if isinstance(value, dict) else value[0]
    assert value == "A"
    with pytest.raises(StrictJSONError, match="surrogate"):
        in_a_deep_stack(lambda: loads_object(nested_json(MAX_DEPTH, b'"\\udc00"', kind=kind)))
    with pytest.raises(StrictJSONError, match="nested too deeply"):
        in_a_deep_stack(lambda: loads_object(nested_json(MAX_DEPTH + 1, kind=kind)))


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":"' + b"[" * 500 + b'"}',
        b'{"a":"' + b"{" * 500 + b'","b":"' + b"]" * 500 + b'"}',
        b'{"a":"\\"' + b"[" * 500 + b'\\\\"}',  # escaped quote, then an escaped backslash
        b'{"a":[' + b",".join([b"[]"] * 500) + b"]}",  # many brackets, never deep
    ],
    ids=["opening-in-string", "both-in-strings", "escaped-quotes", "wide-not-deep"],
)
def test_brackets_inside_strings_or_side_by_side_do_not_count_as_depth(text: bytes) -> None:
    assert isinstance(loads_object(text), dict)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":"' + b"\\" * 2000 + b"[" * 100,  # unterminated string of escapes
        b'{"a":' + b"[" * 100 + b'"' + b'\\"' * 2000,  # deep, then unterminated
        b"]" * 100 + b"[" * 10 + b"{}",
        b'"' * 3001 + b"[" * 50,
    ],
    ids=["unterminated-escapes", "deep-then-unterminated", "closing-first", "odd-quotes"],
)
def test_broken_text_with_many_brackets_is_refused_as_json(text: bytes) -> None:
    with pytest.raises(StrictJSONError):
        loads_object(text)


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_a_parser_running_out_of_stack_or_memory_is_a_refusal(
    monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    """Whatever the limit, resource exhaustion while parsing is StrictJSONError, never the
    exception itself (which a server would turn into a 500 and a traceback)."""

    def exhausted(*args: object) -> Any:
        raise error

    monkeypatch.setattr(json_module, "_orjson_loads", exhausted)  # the canonical fast path
    monkeypatch.setattr(json_module, "_SCAN_ONCE", exhausted)
    monkeypatch.setattr(json_module, "_DECODER", type("D", (), {"decode": exhausted})())
    for text in (b'{"a":1}', b' {"a":1}'):
        with pytest.raises(StrictJSONError):
            loads_object(text)


@pytest.mark.parametrize(
    "number",
    [b"1e400", b"-1e400", b"1" * 400 + b".0", b"9" * 4301, b"-" + b"9" * 5000, b"1" * 100_000],
)
def test_numbers_too_large_to_mean_anything_are_refused(number: bytes) -> None:
    """A float that overflows to infinity, and integers past Python's 4300-digit
    int-from-text limit (a ValueError inside the parser): StrictJSONError."""
    with pytest.raises(StrictJSONError):
        loads_object(b'{"exp":' + number + b"}")


def test_numbers_that_parse_keep_their_value() -> None:
    assert loads_object(b'{"a":1e-400,"b":' + b"9" * 4300 + b"}") == {"a": 0.0, "b": 10**4300 - 1}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_objects())
def test_json_built_by_structure_is_parsed_as_python_reads_it_or_refused(shape: Shape) -> None:
    """The property that would have found F1: JSON text built by structure (any depth to
    past the cookie cap, arrays/objects/mixed, duplicate names at any level, \\u escapes
    with lone surrogates, numbers too big for float or int), parsed with only 60 frames to
    spare: StrictJSONError ("nested too deeply" for anything past MAX_DEPTH) or exactly what
    Python's json reads, never another exception."""
    try:
        value = in_a_deep_stack(lambda: loads_object(shape.data))
    except StrictJSONError as refused:
        if shape.depth > MAX_DEPTH:
            assert str(refused) == "nested too deeply"
        return
    assert shape.depth <= MAX_DEPTH
    assert value == json.loads(shape.text)


# -- the canonical fast path (orjson) against the standard library path -----------------------
def _slow_path(data: bytes) -> dict[str, Any] | str:
    """What loads_object answers with its fast path turned off (value, or the refusal)."""
    saved = json_module._orjson_loads

    def unavailable(data: bytes) -> Any:
        raise json_module.orjson.JSONDecodeError("off", "", 0)

    json_module._orjson_loads = unavailable
    try:
        return loads_object(data)
    except StrictJSONError as exc:
        return f"refused: {exc}"
    finally:
        json_module._orjson_loads = saved


def _either_path(data: bytes) -> dict[str, Any] | str:
    try:
        return loads_object(data)
    except StrictJSONError as exc:
        return f"refused: {exc}"


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=6))
def test_the_fast_path_reads_compact_json_exactly_as_the_standard_library(
    value: dict[str, Any],
) -> None:
    """Compact text (what tokens carry: dumps_compact, or any JOSE library) takes the
    orjson path when it is orjson's own spelling; either way the answer is the standard
    library path's, value for value (types included: 1 stays an int, 1.0 a float)."""
    try:
        data = dumps_compact(value)
    except ValueError:  # a lone surrogate in a drawn string: not JSON-able
        return
    fast, slow = _either_path(data), _slow_path(data)
    assert fast == slow
    assert repr(fast) == repr(slow)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_objects(max_bytes=600))
def test_the_fast_path_refuses_and_accepts_what_the_standard_library_does(shape: Shape) -> None:
    """Duplicate names, lone surrogates, huge numbers, any depth: the same value or the
    same refusal (and reason) with or without the fast path."""
    assert repr(_either_path(shape.data)) == repr(_slow_path(shape.data))


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":1}',  # a duplicate that orjson would fold into one member
        b'{"a":{"b":1,"b":1}}',
        b'{"a":NaN}',
        b'{"a":1e999}',
        b'{"a":"\\ud800"}',
        b'{"a":"\xed\xa0\x80"}',
        b'{"a":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}",
        b'{"a":' + b"9" * 30 + b"}",  # past 64 bits: orjson reads a float
        b'{"a":-0}',
        b'{"a":1E2}',
        b'{"a":"\\u0041"}',
        b'{"a":"\\/"}',
        b'{"a":1} ',
        b"[]",
    ],
)
def test_text_orjson_would_read_differently_takes_the_standard_library_path(
    data: bytes,
) -> None:
    assert repr(_either_path(data)) == repr(_slow_path(data))
