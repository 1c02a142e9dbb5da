"""Key rings for the crypto tests: one per algorithm, generated once per test."""

from __future__ import annotations

import pytest

from authstate.crypto.keys import KeyRing, SigningKey
from tests.crypto.forge import ring_for


@pytest.fixture(params=["EdDSA", "ES256", "HS256"])
def ring(request: pytest.FixtureRequest) -> KeyRing:
    """A ring with one fresh signing key, for each supported algorithm."""
    return ring_for(request.param)


@pytest.fixture
def key(ring: KeyRing) -> SigningKey:
    return ring.signing_key()


@pytest.fixture
def ed_ring() -> KeyRing:
    return ring_for("EdDSA")


@pytest.fixture
def es_ring() -> KeyRing:
    return ring_for("ES256")


@pytest.fixture
def hs_ring() -> KeyRing:
    return ring_for("HS256")
