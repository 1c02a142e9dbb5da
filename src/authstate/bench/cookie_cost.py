"""What one auth cookie costs: its size on the wire and this node's time to verify it.

For the dashboard's "cost of your cookie" panel:

    cost = await measure_cookie_cost(auth, cookie_value)
    cost.size_bytes, cost.verify_us

Imports nothing beyond authstate's core, so a page can use it without the bench extra.
"""

from __future__ import annotations

import statistics
import time
from typing import NamedTuple

from authstate.auth import AuthState


class CookieCost(NamedTuple):
    size_bytes: int  # "name=value" as the browser sends it with every request
    verify_us: float  # median µs for this node to verify it on first sight (cache bypassed)


async def measure_cookie_cost(auth: AuthState, cookie_value: str, *, repeat: int = 5) -> CookieCost:
    """Measure ``cookie_value`` (the auth cookie's value) on this node.

    The verification is timed "cold": the node forgets what it cached about the cookie
    before each of ``repeat`` full verifications (signature and claims for a JWT, the
    store read for a session ID), and the median is returned. The cookie is left cached,
    as after any request. Raises what ``AuthState.authenticate`` raises for a cookie that
    is not valid (``AuthenticationError``, ``StoreUnavailable``). A few hundred µs per
    call with a network store: meant for a page view, not for every request.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    mode = auth.mode
    timings = []
    for _ in range(repeat):
        mode.forget(cookie_value)
        start = time.perf_counter()
        await auth.authenticate(cookie_value)
        timings.append((time.perf_counter() - start) * 1e6)
    size = len(f"{auth.cookie_policy.auth_cookie_name}={cookie_value}".encode())
    return CookieCost(size_bytes=size, verify_us=statistics.median(timings))
