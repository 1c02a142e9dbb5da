"""The dashboard's "cost of your cookie" figures: measured once per node, then kept.

What a cookie costs this node is a property of the node (its mode, its key algorithm, its
store), not of the page view, so it is measured on the first dashboard view that has a
cookie to measure and shown, unchanged, on every view after that. A page view therefore
never pays for a measurement again; a measurement that failed (the store was down) is
tried again on a view at least ``retry_after`` seconds later.

"First sight" is timed on the work a node does for a cookie it has not seen, without
touching the node's caches: the signature and claims check of a JWT (``crypto.jwt``), or
the store read of a session. "From memory" is ``authenticate`` again, answered from the
cache as every request after the first is.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from authstate.auth import AuthCore
from authstate.crypto.ids import hash_secret
from authstate.crypto.token_formats import VERIFIERS
from authstate.errors import AuthenticationError

# Runs per figure; each figure is the median of its runs.
REPEAT = 5


class CookieCost(NamedTuple):
    size_bytes: int  # "name=value" as the browser sends it with every request
    verify_us: float  # median µs for this node to verify a cookie on first sight
    warm_us: float  # median µs to verify it again once this node has it cached
    measured_at: float  # Unix seconds, on the node's clock


class Timings(NamedTuple):
    verify_us: float
    warm_us: float


async def measure_cookie_cost(auth: AuthCore, cookie_value: str, *, repeat: int) -> Timings:
    """Time ``repeat`` first-sight checks and ``repeat`` cached verifications of
    ``cookie_value``. Raises what the checks raise: ``AuthenticationError`` for a cookie
    that is not valid, ``StoreUnavailable`` when the store cannot answer, ``ValueError``
    for a ``repeat`` below 1."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    first_sight = _first_sight(auth)
    cold = [await _timed(first_sight, cookie_value) for _ in range(repeat)]
    warm = [await _timed(auth.authenticate, cookie_value) for _ in range(repeat)]
    return Timings(statistics.median(cold), statistics.median(warm))


def _first_sight(auth: AuthCore) -> Callable[[str], Awaitable[object]]:
    settings = auth.settings
    if settings.mode == "session":

        async def read_session(value: str) -> object:
            record = await auth.store.get_session(hash_secret(value))
            if record is None:
                raise AuthenticationError(reason="session no longer in the store")
            return record

        return read_session

    verify_token = VERIFIERS[settings.token_format]

    async def check_token(value: str) -> object:
        return verify_token(
            value,
            auth.context.keys.ring,
            issuer=settings.issuer,
            audience=settings.audience,
            now=auth.clock.now(),
            leeway=settings.leeway_seconds,
            max_age=settings.access_ttl_seconds,
        )

    return check_token


async def _timed(check: Callable[[str], Awaitable[object]], value: str) -> float:
    start = time.perf_counter()
    await check(value)
    return (time.perf_counter() - start) * 1e6


class CookieCosts:
    """This node's figures for the panel: measured once, kept, retried after a failure."""

    def __init__(self, auth: AuthCore, *, retry_after: float = 60.0) -> None:
        self._auth = auth
        self._retry_after = retry_after
        self._timings: Timings | None = None
        self._measured_at = 0.0
        self._failed_at: float | None = None

    async def for_cookie(self, cookie_value: str) -> CookieCost | None:
        """The figures for a cookie of this node, measured with this one if none are kept
        yet; None when they cannot be had now. Raises what ``measure_cookie_cost`` raises."""
        auth = self._auth
        now = auth.clock.now()
        if self._timings is None:
            if self._failed_at is not None and now - self._failed_at < self._retry_after:
                return None
            self._failed_at = now  # until the measurement below succeeds
            self._timings = await measure_cookie_cost(auth, cookie_value, repeat=REPEAT)
            self._measured_at = now
            self._failed_at = None
        size = len(f"{auth.cookie_policy.auth_cookie_name}={cookie_value}".encode())
        return CookieCost(size, self._timings.verify_us, self._timings.warm_us, self._measured_at)
