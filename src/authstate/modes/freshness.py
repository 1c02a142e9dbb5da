"""Whether this node may answer from memory: its view of the revocation state is recent."""

from __future__ import annotations

from authstate._time import Clock
from authstate.stores.base import Store


class Freshness:
    """Whether this node's view of the revocation state is within the staleness bound.

    The one rule every cache-served answer obeys: session hits in session mode, and every
    JWT under ``fail_closed``.
    """

    def __init__(self, store: Store, clock: Clock, max_staleness: float) -> None:
        self.store = store
        self.clock = clock
        self.max_staleness = max_staleness  # seconds

    def is_fresh(self) -> bool:
        since = self.store.bus_healthy_since()
        return since is not None and self.clock.monotonic() - since <= self.max_staleness
