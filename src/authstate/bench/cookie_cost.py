"""What one auth cookie costs: its size on the wire and this node's time to verify it.

For the dashboard's "cost of your cookie" panel:

    cost = await measure_cookie_cost(auth, cookie_value)
    cost.size_bytes, cost.verify_us, cost.warm_us

Imports nothing beyond authstate's core, so a page can use it without the bench extra.
"""

from __future__ import annotations

import statistics
import time
from typing import NamedTuple

from authstate.asgi.auth_state import AuthState


class CookieCost(NamedTuple):
    size_bytes: int  # "name=value" as the browser sends it with every request
    verify_us: float  # median µs for this node to verify it on first sight (cache bypassed)
    warm_us: float  # median µs to verify it again once this node has it cached


async def measure_cookie_cost(auth: AuthState, cookie_value: str, *, repeat: int = 5) -> CookieCost:
    """Measure ``cookie_value`` (the auth cookie's value) on this node.

    The verification is timed "cold": the node forgets what it cached about the cookie
    before each of ``repeat`` full verifications (signature and claims for a JWT, the
    store read for a session ID). It is then timed "warm": ``repeat`` more verifications
    without forgetting, answered from the node's cache as requests after the first are
    (from the store again for a session while the bus is stale). Each time is the median
    of its runs. The cookie is left cached, as after any request.

    Raises ``ValueError`` if ``repeat`` is below 1, and what ``AuthState.authenticate``
    raises for a cookie that is not valid (``AuthenticationError``) or cannot be checked
    now (``StoreUnavailable``); a cold run that raised may leave the cookie uncached, so
    its next use is verified in full, as on a node that never saw it. A few hundred µs
    per call with a network store: meant for a page view, not for every request.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    mode = auth.mode
    cold = []
    for _ in range(repeat):
        mode.forget(cookie_value)
        start = time.perf_counter()
        await auth.authenticate(cookie_value)
        cold.append((time.perf_counter() - start) * 1e6)
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        await auth.authenticate(cookie_value)
        warm.append((time.perf_counter() - start) * 1e6)
    size = len(f"{auth.cookie_policy.auth_cookie_name}={cookie_value}".encode())
    return CookieCost(
        size_bytes=size, verify_us=statistics.median(cold), warm_us=statistics.median(warm)
    )
