"""Sealing stored secrets under the master secret, and per-purpose derived keys."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from authstate.crypto.sealing import Sealer, derive_key
from authstate.errors import ConfigurationError

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(1, 33))


def _hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out by hand (salt absent = 32 zero bytes), as an independent oracle."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def test_derived_keys_are_hkdf_sha256_with_an_authstate_purpose_label() -> None:
    assert derive_key(MASTER, "csrf") == _hkdf_sha256(MASTER, b"authstate/csrf", 32)
    assert derive_key(MASTER, "refresh", 64) == _hkdf_sha256(MASTER, b"authstate/refresh", 64)


def test_each_purpose_gets_its_own_key() -> None:
    keys = {derive_key(MASTER, purpose) for purpose in ("csrf", "refresh", "sealing")}
    assert len(keys) == 3
    assert derive_key(MASTER, "csrf") != derive_key(OTHER_MASTER, "csrf")


def test_a_master_secret_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        derive_key(b"x" * 31, "csrf")
    with pytest.raises(ConfigurationError):
        Sealer(b"x" * 31)


def test_sealed_bytes_unseal_to_the_plaintext() -> None:
    sealer = Sealer(MASTER)
    sealed = sealer.seal(b"private key bytes", aad=b"kid-1")
    assert b"private key bytes" not in sealed
    assert sealer.unseal(sealed, aad=b"kid-1") == b"private key bytes"
    assert Sealer(MASTER).unseal(sealed, aad=b"kid-1") == b"private key bytes"  # another node


def test_sealing_twice_gives_different_bytes() -> None:
    sealer = Sealer(MASTER)
    assert sealer.seal(b"same", aad=b"a") != sealer.seal(b"same", aad=b"a")


def test_a_node_with_another_master_secret_cannot_unseal_and_says_why() -> None:
    sealed = Sealer(MASTER).seal(b"secret", aad=b"a")
    with pytest.raises(ConfigurationError, match="AUTHSTATE_SECRET"):
        Sealer(OTHER_MASTER).unseal(sealed, aad=b"a")


def test_sealed_bytes_moved_to_another_record_do_not_unseal() -> None:
    sealer = Sealer(MASTER)
    sealed = sealer.seal(b"secret", aad=b"kid-1")
    with pytest.raises(ConfigurationError):
        sealer.unseal(sealed, aad=b"kid-2")


@pytest.mark.parametrize("position", [0, 11, 12, 17, -16, -1])  # nonce, ciphertext, tag
def test_any_altered_byte_makes_unsealing_fail(position: int) -> None:
    sealer = Sealer(MASTER)
    sealed = bytearray(sealer.seal(b"secret", aad=b"a"))
    sealed[position] ^= 0x01
    with pytest.raises(ConfigurationError):
        sealer.unseal(bytes(sealed), aad=b"a")


@pytest.mark.parametrize("length", [0, 12, 27])
def test_truncated_sealed_bytes_are_refused(length: int) -> None:
    sealer = Sealer(MASTER)
    with pytest.raises(ConfigurationError):
        sealer.unseal(sealer.seal(b"", aad=b"a")[:length], aad=b"a")


def test_the_sealer_repr_shows_no_secret() -> None:
    text = repr(Sealer(MASTER))
    assert MASTER.hex() not in text and repr(MASTER) not in text
    assert repr(derive_key(MASTER, "sealing")) not in text
