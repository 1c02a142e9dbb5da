"""``authstate bench``: what each mode, store and peer costs, measured side by side.

``measure_cookie_cost(auth, cookie_value)`` (a cookie's size and this node's time to
verify it) is the one piece meant for use outside the bench: it needs nothing but the
core install. Everything else runs from ``authstate bench`` (``authstate.bench.runner``).
"""

from __future__ import annotations

from authstate.bench.cookie_cost import CookieCost, measure_cookie_cost

__all__ = ["CookieCost", "measure_cookie_cost"]
