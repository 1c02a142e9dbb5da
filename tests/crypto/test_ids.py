"""Random ids, their strict base64url form and the hash stores key them by."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authstate.crypto.ids import (
    b64url_decode,
    b64url_encode,
    check_handle_format,
    check_secret_format,
    hash_secret,
    new_handle,
    new_jti,
    new_secret_id,
)
from authstate.errors import InvalidToken, NotFound

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_secret_ids_are_256_random_bits_as_43_url_safe_characters() -> None:
    ids = [new_secret_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert len(value) == 43 and URL_SAFE.fullmatch(value)
        assert len(b64url_decode(value)) == 32


@pytest.mark.parametrize("make", [new_handle, new_jti])
def test_handles_and_jtis_are_128_random_bits_as_22_url_safe_characters(
    make: Callable[[], str],
) -> None:
    ids = [make() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert len(value) == 22 and URL_SAFE.fullmatch(value)
        assert len(b64url_decode(value)) == 16


def test_the_store_key_is_the_lowercase_hex_sha256_of_the_secret() -> None:
    assert hash_secret("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    secret = new_secret_id()
    assert hash_secret(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert hash_secret(secret) != secret


def test_fresh_secrets_and_handles_pass_their_format_checks() -> None:
    check_secret_format(new_secret_id())
    check_handle_format(new_handle())


@pytest.mark.parametrize(
    "value",
    [
        "",
        "A" * 42,
        "A" * 44,
        "A" * 42 + "=",
        "A" * 42 + "+",
        "A" * 42 + "/",
        "A" * 42 + " ",
        "A" * 43 + "\n",  # a "$"-anchored regex would let this through
        "A" * 42 + "é",
        None,
        b"A" * 43,
    ],
)
def test_a_malformed_secret_is_refused_before_any_lookup(value: object) -> None:
    with pytest.raises(InvalidToken):
        check_secret_format(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "A" * 21, "A" * 23, "A" * 22 + "\n", "../" * 7 + "A", 7])
def test_a_malformed_handle_is_not_found(value: object) -> None:
    with pytest.raises(NotFound):
        check_handle_format(value)  # type: ignore[arg-type]


@given(st.binary(max_size=200))
def test_base64url_round_trips_any_bytes_without_padding(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text) == data


@given(st.text(alphabet="ABCDEFabcdef0189-_+/= \n.AQgwEIMUYcko", max_size=12))
def test_base64url_accepts_only_the_one_spelling_the_encoder_produces(text: str) -> None:
    # Padding, whitespace, "+" "/", impossible lengths and set unused bits are all refused.
    try:
        data = b64url_decode(text)
    except ValueError:
        return
    assert b64url_encode(data) == text


@pytest.mark.parametrize("text", ["AB", "AAB", "QR", "____=", "A", "AA==", "AA A", "AA\n"])
def test_base64url_refuses_non_canonical_or_padded_text(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)
