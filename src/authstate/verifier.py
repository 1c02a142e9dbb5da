"""``Verifier``: verify-only access for other services, from the auth server's JWKS.

    verifier = Verifier.from_jwks("https://auth.example.com/.well-known/jwks.json",
                                  issuer="authstate", audience="authstate")
    claims = await verifier.verify(token)

The key set is fetched once, cached for ``cache_seconds``, and refetched on an unknown
``kid`` at most once per ``min_refetch_interval``: a flood of tokens with random kids, or
an auth server that is down, cannot make the verifier fetch more often than that. A failed
refetch keeps the keys already known. Only the configured URL is ever fetched: the token
front layer refuses ``jku``, ``x5u``, ``jwk`` and ``x5c`` before any key is looked up, and
redirects are not followed.

Given the auth server's store, the verifier also loads the revocation state and follows it
through the store's bus, so logout, logout-everywhere and password changes reach it too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from authstate._time import Clock, SystemClock
from authstate.bearer import MIXED_CREDENTIALS, is_bearer, read_bearer
from authstate.cookies import AUTH_COOKIE, read_cookie
from authstate.crypto._json import StrictJSONError, loads_object
from authstate.crypto.jwt import ACCESS_TOKEN_TYPE, AccessClaims, parse_compact, verify_access_token
from authstate.crypto.keys import KeyRing, SigningKey
from authstate.errors import (
    AuthenticationError,
    BadRequest,
    ConfigurationError,
    InvalidToken,
    StoreUnavailable,
)
from authstate.modes.access_tokens import roles_version_of
from authstate.revocation import RevocationState
from authstate.stores.base import ChangeBus, Lifecycle

log = logging.getLogger("authstate.verifier")

JWKSFetcher = Callable[[], Awaitable[Mapping[str, Any]]]


class RevocationSource(Lifecycle, ChangeBus, Protocol):
    """The store protocols a ``Verifier`` uses: the change log it follows for revocations."""


MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 5.0


def ring_from_jwks(document: Mapping[str, Any]) -> KeyRing:
    """A verify-only ring from a JWKS document; ``ConfigurationError`` if it is unusable.

    The whole document is refused when any entry is: a private or symmetric member in a
    published key set means the auth server is misconfigured (or the document is not
    the auth server's), and nothing in it should be trusted.
    """
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ConfigurationError("JWKS document has no 'keys' list")
    if not keys:
        # An HS256 server publishes nothing: only it can check its tokens.
        raise ConfigurationError("JWKS document has no keys (an HS256 server publishes none)")
    parsed: list[SigningKey] = []
    for jwk in keys:
        if not isinstance(jwk, dict):
            raise ConfigurationError("JWKS entry is not an object")
        parsed.append(SigningKey.from_public_jwk(jwk))
    return KeyRing(parsed)


def _check_url(url: str, *, unsafe_allow_http: bool) -> None:
    """Refuse a JWKS URL that a network attacker could answer in the server's place."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        if unsafe_allow_http or parts.hostname == "localhost":
            return
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return
        except ValueError:
            pass
    raise ConfigurationError(
        "the JWKS URL must be https:// (plain http only to a loopback address, "
        "or with unsafe_allow_http=True)"
    )


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ConfigurationError(f"the JWKS is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class Verifier:
    """Verifies access tokens issued by an authstate server, with its public keys only.

    ``fetch_jwks`` returns the JWKS document (``from_jwks`` builds one for a URL).
    ``issuer``/``audience`` must equal the server's ``AUTHSTATE_ISSUER``/``_AUDIENCE``;
    ``leeway`` (seconds) tolerates clock skew; ``max_age`` (seconds) refuses tokens issued
    longer ago whatever their ``exp``. ``cache_seconds`` is how long a fetched key set is
    used before it is refreshed; ``min_refetch_interval`` (seconds) is the least time
    between two fetches triggered by tokens. ``store``: the auth server's store, to follow
    its revocation state (the verifier opens it on ``start`` and closes it on ``aclose``).
    """

    def __init__(
        self,
        fetch_jwks: JWKSFetcher,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        max_age: int | None = None,
        cache_seconds: float = 300.0,
        min_refetch_interval: float = 10.0,
        store: RevocationSource | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not issuer or not audience:
            raise ConfigurationError("a verifier needs the issuer and the audience to expect")
        if cache_seconds <= 0 or min_refetch_interval <= 0 or leeway < 0:
            raise ConfigurationError("verifier intervals must be positive, leeway not negative")
        self._fetch_jwks = fetch_jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._max_age = max_age
        self._cache_seconds = cache_seconds
        self._min_refetch_interval = min_refetch_interval
        self._store = store
        self._clock = clock or SystemClock()
        self._ring: KeyRing | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at = float("-inf")  # monotonic time of the last successful fetch
        self._attempted_at = float("-inf")  # ... of the last attempt, successful or not
        self._lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._revocation: RevocationState | None = None
        self._store_opened = False
        self.fetch_count = 0  # attempts to fetch the JWKS (for monitoring and tests)

    @classmethod
    def from_jwks(
        cls,
        url: str,
        *,
        issuer: str = "authstate",
        audience: str = "authstate",
        client: httpx.AsyncClient | None = None,
        unsafe_allow_http: bool = False,
        **options: Any,
    ) -> Verifier:
        """A verifier for the JWKS at ``url``: fetched with httpx (5 s timeout, 64 KiB cap,
        no redirects). ``url`` must be ``https://``, or ``http://`` to a loopback address,
        unless ``unsafe_allow_http``. ``client`` replaces the default httpx client (its own
        settings then apply). Other ``options`` go to ``Verifier``.

        Raises ``ConfigurationError`` for an unacceptable URL.
        """
        _check_url(url, unsafe_allow_http=unsafe_allow_http)

        async def fetch() -> Mapping[str, Any]:
            owned = client is None
            http = client or httpx.AsyncClient(
                timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
            )
            try:
                request = http.build_request("GET", url, headers={"Accept": "application/json"})
                response = await http.send(request, stream=True, follow_redirects=False)
                try:
                    if response.status_code != 200:
                        raise StoreUnavailable(
                            f"cannot fetch the JWKS from {url}",
                            reason=f"HTTP {response.status_code}",
                        )
                    body = await _read_capped(response, MAX_JWKS_BYTES)
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                raise StoreUnavailable(
                    f"cannot fetch the JWKS from {url}", reason=type(exc).__name__
                ) from exc
            finally:
                if owned:
                    await http.aclose()
            try:
                return loads_object(body)
            except StrictJSONError as exc:
                raise ConfigurationError(f"JWKS at {url} is not a JSON object: {exc}") from None

        return cls(fetch, issuer=issuer, audience=audience, **options)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Fetch the keys now and, with a store, load and follow the revocation state.

        Raises ``StoreUnavailable`` or ``ConfigurationError`` when the key set cannot be
        had. Optional: ``verify`` does the same on first use (with fetches rate-limited),
        but starting early fails fast at deployment instead of on the first request.
        """
        if self._ring is None:
            await self._refresh(force=True)
        await self._follow_revocations()

    async def _follow_revocations(self) -> None:
        if self._store is None or self._revocation is not None:
            return
        async with self._start_lock:
            if self._revocation is not None:
                return
            if not self._store_opened:
                await self._store.open()
                self._store_opened = True
            revocation = RevocationState(self._clock)
            store, clock = self._store, self._clock

            async def reload() -> None:
                # After a bus interruption or data loss in the store (see Store.listen).
                changes, seq = await store.active_revocations(clock.now())
                revocation.load(changes, seq)

            await store.listen(revocation.apply, reconcile=reload)
            await reload()
            self._revocation = revocation

    async def aclose(self) -> None:
        """Close the store opened by ``start`` (nothing else holds resources)."""
        if self._store is not None and self._store_opened:
            self._store_opened = False
            self._revocation = None
            await self._store.close()

    async def __aenter__(self) -> Verifier:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def kids(self) -> frozenset[str]:
        """The key ids currently trusted."""
        return self._kids

    # -- verification --------------------------------------------------------------------------
    async def verify(self, token: str) -> AccessClaims:
        """The claims of a valid, unrevoked access token; ``InvalidToken`` otherwise.

        Raises ``StoreUnavailable`` (or ``ConfigurationError``) only while no key set has
        ever been fetched, or when the revocation state cannot be loaded from the store:
        "cannot tell" is never answered with a pass.
        """
        # The front layer runs before any fetch: a token carrying jku/x5u/jwk, or no kid,
        # is refused here and can never cause one.
        kid = parse_compact(token).header["kid"]
        # Not start(): many first requests at once must not mean many fetches.
        ring = await self._current_ring()
        await self._follow_revocations()
        if kid not in self._kids:
            ring = await self._refresh(force=False)
            if kid not in self._kids:
                raise InvalidToken(reason="unknown kid")
        claims = verify_access_token(
            token,
            ring,
            issuer=self._issuer,
            audience=self._audience,
            now=self._clock.now(),
            leeway=self._leeway,
            typ=ACCESS_TOKEN_TYPE,
            max_age=self._max_age,
        )
        if self._revocation is not None:
            self._revocation.check(
                user_id=claims.sub, generation=claims.gen, handle=claims.sid, jti=claims.jti
            )
            # Roles changed since the token was issued (``AuthState.set_roles``): stale.
            self._revocation.check_roles_version(claims.sub, roles_version_of(claims))
        return claims

    async def verify_request(
        self, headers: Iterable[tuple[str, str]], *, cookie_name: str = AUTH_COOKIE
    ) -> AccessClaims:
        """The claims of the access token a request carries: in ``Authorization: Bearer``
        (API clients, other services) or in the auth cookie ``cookie_name`` (a service on
        the auth server's site, which the browser sends it to). ``headers`` are the
        request's (name, value) pairs, repeated names included (Starlette's
        ``request.headers.items()``).

        Raises ``BadRequest`` (answer 400) for a request carrying both, which is refused
        rather than resolved as the auth server does; ``InvalidToken`` for none, a
        malformed one, or what ``verify`` refuses (a session ID is not a token)."""
        cookies: list[str] = []
        authorizations: list[str] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == "cookie":
                cookies.append(value)
            elif lowered == "authorization":
                authorizations.append(value)
        cookie_problem = None
        try:
            cookie = read_cookie(cookies, cookie_name) if cookies else None
        except AuthenticationError as exc:
            cookie, cookie_problem = None, exc.reason
        if any(is_bearer(value) for value in authorizations):
            if cookie is not None or cookie_problem is not None:
                raise BadRequest(MIXED_CREDENTIALS, reason="auth cookie and bearer header")
            try:
                token = read_bearer(authorizations)
            except AuthenticationError as exc:
                raise InvalidToken(reason=exc.reason) from None
        elif cookie_problem is not None:
            raise InvalidToken(reason=cookie_problem)
        else:
            token = cookie
        if token is None:
            raise InvalidToken(reason="no bearer header and no auth cookie")
        return await self.verify(token)

    async def _current_ring(self) -> KeyRing:
        ring = self._ring
        if ring is None or self._clock.monotonic() - self._fetched_at > self._cache_seconds:
            return await self._refresh(force=False)
        return ring

    async def _refresh(self, *, force: bool) -> KeyRing:
        """Fetch the key set unless one was attempted less than ``min_refetch_interval`` ago
        (``force`` skips that wait). Keeps the known keys when the fetch fails; raises only
        when there are none."""
        async with self._lock:
            since = self._clock.monotonic() - self._attempted_at
            if not force and since < self._min_refetch_interval:
                # Rate limit: unknown kids and a down server cannot drive fetches.
                if self._ring is None:
                    raise StoreUnavailable("the auth server's keys are not available yet")
                return self._ring
            self._attempted_at = self._clock.monotonic()
            self.fetch_count += 1
            try:
                ring = ring_from_jwks(await self._fetch_jwks())
            except (StoreUnavailable, ConfigurationError) as exc:
                if self._ring is None:
                    raise
                log.warning("JWKS refresh failed; keeping the known keys: %s", exc.detail)
                return self._ring
            self._ring = ring
            self._kids = frozenset(key.kid for key in ring.keys)
            self._fetched_at = self._attempted_at
            return ring
