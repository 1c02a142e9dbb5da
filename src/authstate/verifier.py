"""``Verifier``: verify-only access for other services, from the auth server's JWKS.

    verifier = Verifier.from_jwks("https://auth.example.com/.well-known/jwks.json",
                                  issuer="authstate", audience="authstate")
    claims = await verifier.verify(token)

The key set is fetched once, cached, and refetched on an unknown ``kid`` at most once per
``min_refetch_interval`` (a flood of tokens with random kids cannot make it fetch more).
Header parameters such as ``jku``/``x5u`` are never followed: the front layer refuses them.
Given a store, the verifier also follows the revocation state through the store's bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from authstate._time import Clock, SystemClock
from authstate.crypto.jwt import AccessClaims, parse_compact, verify_access_token
from authstate.crypto.keys import KeyRing, SigningKey
from authstate.errors import ConfigurationError, StoreUnavailable
from authstate.revocation import RevocationState
from authstate.stores.base import Store

JWKSFetcher = Callable[[], Awaitable[Mapping[str, Any]]]

MAX_JWKS_BYTES = 64 * 1024


def ring_from_jwks(document: Mapping[str, Any]) -> KeyRing:
    """A verify-only ring from a JWKS document; ``ConfigurationError`` if it is unusable."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ConfigurationError("JWKS document has no 'keys' list")
    parsed: list[SigningKey] = []
    for jwk in keys:
        if not isinstance(jwk, dict):
            raise ConfigurationError("JWKS entry is not an object")
        parsed.append(SigningKey.from_public_jwk(jwk))
    return KeyRing(parsed)


class Verifier:
    def __init__(
        self,
        fetch_jwks: JWKSFetcher,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        cache_seconds: float = 300.0,
        min_refetch_interval: float = 30.0,
        store: Store | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache_seconds = cache_seconds
        self._min_refetch_interval = min_refetch_interval
        self._store = store
        self._clock = clock or SystemClock()
        self._ring: KeyRing | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._revocation: RevocationState | None = None
        self.fetch_count = 0

    @classmethod
    def from_jwks(
        cls,
        url: str,
        *,
        issuer: str = "authstate",
        audience: str = "authstate",
        client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> Verifier:
        """A verifier for the JWKS at ``url`` (fetched with httpx, 5 s timeout, 64 KiB cap)."""

        async def fetch() -> Mapping[str, Any]:
            owned = client is None
            http = client or httpx.AsyncClient(timeout=5.0, follow_redirects=False)
            try:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                if len(response.content) > MAX_JWKS_BYTES:
                    raise ConfigurationError(f"JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise StoreUnavailable(
                    f"cannot fetch the JWKS from {url}", reason=str(exc)
                ) from exc
            finally:
                if owned:
                    await http.aclose()
            if not isinstance(document, dict):
                raise ConfigurationError(f"JWKS at {url} is not a JSON object")
            return document

        return cls(fetch, issuer=issuer, audience=audience, **options)

    async def start(self) -> None:
        """Fetch the keys and, with a store, load and follow the revocation state."""
        await self._refresh(force=True)
        if self._store is not None and self._revocation is None:
            revocation = RevocationState(self._clock)
            await self._store.open()
            await self._store.listen(revocation.apply)
            changes, seq = await self._store.active_revocations(self._clock.now())
            revocation.load(changes, seq)
            self._revocation = revocation

    async def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; ``InvalidToken`` otherwise."""
        ring = await self._current_ring()
        kid = parse_compact(token).header.get("kid")
        if isinstance(kid, str) and kid not in {k.kid for k in ring.keys}:
            ring = await self._refresh(force=False)
        claims = verify_access_token(
            token,
            ring,
            issuer=self._issuer,
            audience=self._audience,
            now=self._clock.now(),
            leeway=self._leeway,
        )
        if self._revocation is not None:
            self._revocation.check(
                user_id=claims.sub, generation=claims.gen, sid=claims.sid, jti=claims.jti
            )
        return claims

    async def _current_ring(self) -> KeyRing:
        if self._ring is None or self._clock.monotonic() - self._fetched_at > self._cache_seconds:
            return await self._refresh(force=self._ring is None)
        return self._ring

    async def _refresh(self, *, force: bool) -> KeyRing:
        async with self._lock:
            since = self._clock.monotonic() - self._fetched_at
            if self._ring is not None and not force and since < self._min_refetch_interval:
                return self._ring  # rate limit: unknown kids cannot drive fetches
            try:
                document = await self._fetch_jwks()
            except StoreUnavailable:
                if self._ring is None:
                    raise
                return self._ring  # keep verifying with the keys we had
            self.fetch_count += 1
            self._ring = ring_from_jwks(document)
            self._fetched_at = self._clock.monotonic()
            return self._ring
