"""Strict JSON: one spelling, one meaning, no surprises from Python's json module."""

from __future__ import annotations

import pytest

from authstate.crypto._json import StrictJSONError, dumps_compact, loads_object


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
