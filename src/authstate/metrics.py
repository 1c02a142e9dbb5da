"""Prometheus metrics of one ``AuthState`` (needs the ``metrics`` extra:
``pip install 'authstate[metrics]'``).

    from prometheus_client import REGISTRY
    from authstate.metrics import Collector

    REGISTRY.register(Collector(auth))

The counters are built on the lifecycle events (``authstate.events``) and read at scrape
time: nothing is added to a request's path but the integer additions the caches already
make. ``authstate serve --metrics`` serves the same metrics at ``GET /metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector as _PrometheusCollector

from authstate.events import ALL_EVENTS
from authstate.telemetry import LATENCY_BUCKETS, EventCounts

if TYPE_CHECKING:
    from authstate.auth import AuthCore

# (metric name without _total, help, event name)
_EVENT_COUNTERS = (
    ("authstate_logins", "Logins that issued credentials.", "login"),
    ("authstate_login_failures", "Logins refused for a wrong password or user.", "login_failed"),
    (
        "authstate_login_throttled",
        "Logins refused with 429 (too many failures).",
        "login_throttled",
    ),
    ("authstate_refreshes", "Refresh tokens rotated (hybrid).", "refresh"),
    ("authstate_refresh_reuse", "Reused refresh tokens; each revoked its family.", "refresh_reuse"),
)


class Collector(_PrometheusCollector):
    """The metrics of ``auth``, for a ``prometheus_client`` registry. Create one per
    ``AuthState`` (it subscribes to the events); register it in one registry."""

    def __init__(self, auth: AuthCore) -> None:
        self._auth = auth
        self._counts = EventCounts()
        auth.subscribe(self._counts)

    def collect(self) -> Iterator[Metric]:
        counts = self._counts.by_name
        for name, text, event in _EVENT_COUNTERS:
            yield _counter(name, text, counts[event])
        events = CounterMetricFamily(
            "authstate_events", "Lifecycle events emitted, by event.", labels=["event"]
        )
        for event_type in ALL_EVENTS:
            events.add_metric([event_type.name], counts[event_type.name])
        yield events
        revocations = CounterMetricFamily(
            "authstate_revocations", "Credentials revoked, by reason.", labels=["reason"]
        )
        for reason, value in self._counts.revocations().items():
            revocations.add_metric([reason], value)
        yield revocations
        yield self._store_latency()
        if self._auth.started:
            yield from self._node_state()

    def _store_latency(self) -> Metric:
        histogram = HistogramMetricFamily(
            "authstate_store_call_seconds",
            "Latency of store calls, by operation.",
            labels=["operation"],
        )
        bounds = [*(str(bound) for bound in LATENCY_BUCKETS), "+Inf"]
        for operation, cumulative, _count, total in self._auth.store_stats.snapshot():
            histogram.add_metric(
                [operation], list(zip(bounds, cumulative, strict=True)), sum_value=total
            )
        return histogram

    def _node_state(self) -> Iterator[Metric]:
        auth = self._auth
        sessions = auth.context.sessions
        cache = CounterMetricFamily(
            "authstate_cache_lookups",
            "In-memory lookups on the request path, by cache and result.",
            labels=["cache", "result"],
        )
        cache.add_metric(["session", "hit"], sessions.hits)
        cache.add_metric(["session", "miss"], sessions.misses)
        if auth.settings.mode != "session":
            tokens = auth.tokens
            cache.add_metric(["token", "hit"], tokens.lookups - tokens.cold_verifications)
            cache.add_metric(["token", "miss"], tokens.cold_verifications)
        yield cache
        freshness = auth.context.freshness
        since = freshness.store.bus_healthy_since()
        staleness = math.inf if since is None else freshness.clock.monotonic() - since
        yield GaugeMetricFamily(
            "authstate_bus_healthy",
            "1 while the invalidation bus is within the staleness bound, else 0.",
            value=1.0 if staleness <= freshness.max_staleness else 0.0,
        )
        yield GaugeMetricFamily(
            "authstate_bus_staleness_seconds",
            "Seconds since the invalidation bus last proved itself current (+Inf: down).",
            value=staleness,
        )
        lag = freshness.store.bus_lag()
        yield GaugeMetricFamily(
            "authstate_bus_lag_seconds",
            "Seconds a change published now would take to reach this node, as last measured"
            " on the bus's listening path (NaN: not measured yet or the bus is down).",
            value=math.nan if lag is None else lag,
        )
        yield GaugeMetricFamily(
            "authstate_bus_max_staleness_seconds",
            "The staleness bound (AUTHSTATE_MAX_STALENESS).",
            value=freshness.max_staleness,
        )


def _counter(name: str, text: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)
