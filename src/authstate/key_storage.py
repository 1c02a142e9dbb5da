"""Loads, creates and rotates the key ring through the store, sealed with the master secret.

Every node sharing a store and ``AUTHSTATE_SECRET`` ends up with the same ring: the first
node to start creates the signing key (a ``Conflict`` from a concurrent start just means
another node won; we reload), and a rotation is announced on the bus as a KEYS change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from typing import Protocol

from authstate._time import Clock
from authstate.crypto.keys import Algorithm, KeyRing, SigningKey, generate_key
from authstate.crypto.sealing import Sealer
from authstate.errors import Conflict
from authstate.stores.base import Change, ChangeBus, ChangeKind, KeyStore, StoredKey

log = logging.getLogger("authstate.keys")


def _aad(kid: str, alg: str) -> bytes:
    # Binding the sealed bytes to kid and alg stops a store writer from swapping keys around.
    return f"authstate-key\x00{kid}\x00{alg}".encode()


class KeyRingStore(KeyStore, ChangeBus, Protocol):
    """The store protocols ``KeyManager`` uses (keys, and the log to announce a new one)."""


class KeyManager:
    """Owns the node's current ``KeyRing``."""

    def __init__(
        self,
        store: KeyRingStore,
        sealer: Sealer,
        clock: Clock,
        *,
        algorithm: Algorithm,
        verify_grace_seconds: float,
        first_kid: str | None = None,
    ) -> None:
        """``first_kid``: the kid every node uses for the first key of an empty store (derive
        it from the shared master secret); None gives it a random kid."""
        self._store = store
        self._sealer = sealer
        self._clock = clock
        self._algorithm = algorithm
        # How long a replaced key keeps verifying: the longest token it signed, plus leeway.
        self._verify_grace = verify_grace_seconds
        self._ring: KeyRing | None = None
        self._first_kid = first_kid

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            raise RuntimeError("KeyManager.load() has not run")
        return self._ring

    async def load(self) -> KeyRing:
        """Load the ring from the store, creating the first signing key when there is none."""
        ring = await self._read_ring()
        if ring is None and self._first_kid is not None:
            # Nodes starting together on an empty store all try the same kid: one insert
            # wins, the others get Conflict and read the winner's key, so every node signs
            # with one key (random kids would leave each node with a key the others lack).
            with contextlib.suppress(Conflict):
                await self._save_new_key(kid=self._first_kid)
            ring = await self._read_ring()
        if ring is None:
            await self._save_new_key()
            ring = await self._read_ring()
        elif ring.signing_key().alg != self._algorithm:
            # AUTHSTATE_ALGORITHM changed: sign with a key of the new algorithm from now on.
            await self.rotate()
            return self.ring
        if ring is None:  # pragma: no cover - the save above either stored a key or conflicted
            raise RuntimeError("no signing key after creating one")
        self._ring = ring
        return ring

    async def rotate(self) -> SigningKey:
        """Create a new signing key; previous keys verify until their tokens have expired."""
        now = self._clock.now()
        old_keys = await self._store.load_keys()
        new_key = await self._save_new_key()
        for stored in old_keys:
            if stored.retire_after is None:
                await self._store.retire_key(stored.kid, now + self._verify_grace)
        await self._store.publish(Change(ChangeKind.KEYS, "", until=now + self._verify_grace))
        await self.load()
        log.info("signing key rotated", extra={"kid": new_key.kid})
        return new_key

    async def purge_retired(self) -> int:
        """Delete keys that no longer verify anything; they then leave the JWKS."""
        now = self._clock.now()
        removed = 0
        for stored in await self._store.load_keys():
            if stored.retire_after is not None and stored.retire_after < now:
                await self._store.delete_key(stored.kid)
                removed += 1
        return removed

    async def _save_new_key(self, *, kid: str | None = None) -> SigningKey:
        """Store a new key (``Conflict`` only when ``kid`` is given and already taken)."""
        key = generate_key(self._algorithm, now=self._clock.now())
        if kid is not None:
            key = dataclasses.replace(key, kid=kid)
        public_jwk = "" if key.alg == "HS256" else _json(key.public_jwk())
        stored = StoredKey(
            kid=key.kid,
            alg=key.alg,
            sealed_private=self._sealer.seal(key.private_bytes(), aad=_aad(key.kid, key.alg)),
            public_jwk=public_jwk,
            created_at=key.created_at,
        )
        try:
            await self._store.save_key(stored)
        except Conflict:
            if kid is not None:
                raise
            return await self._save_new_key()  # pragma: no cover - a random kid collided
        return key

    async def _read_ring(self) -> KeyRing | None:
        now = self._clock.now()
        keys: list[SigningKey] = []
        for stored in await self._store.load_keys():
            if stored.retire_after is not None and stored.retire_after < now:
                continue
            # A ring never mixes HMAC and asymmetric keys: keys of another family (left from
            # an earlier AUTHSTATE_ALGORITHM) are retired by the rotation that replaced them.
            if (stored.alg == "HS256") != (self._algorithm == "HS256"):
                continue
            private = self._sealer.unseal(stored.sealed_private, aad=_aad(stored.kid, stored.alg))
            keys.append(
                SigningKey.from_private_bytes(
                    stored.kid,
                    stored.alg,  # type: ignore[arg-type]  # validated by from_private_bytes
                    private,
                    created_at=stored.created_at,
                    retire_after=stored.retire_after,
                )
            )
        if not any(k.retire_after is None for k in keys):
            return None
        return KeyRing(keys)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
