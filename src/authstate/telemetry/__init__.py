"""What a node measures about itself, without any metrics library: the latency of its
store calls (``StoreStats``, filled by ``instrument_store``, which also opens an
OpenTelemetry span per call when ``opentelemetry-api`` is installed) and the lifecycle
events it emitted (``EventCounts``). ``authstate.metrics`` exposes both to Prometheus."""

from authstate.telemetry.counts import EventCounts as EventCounts
from authstate.telemetry.store_calls import LATENCY_BUCKETS as LATENCY_BUCKETS
from authstate.telemetry.store_calls import StoreStats as StoreStats
from authstate.telemetry.store_calls import instrument_store as instrument_store

__all__ = ["LATENCY_BUCKETS", "EventCounts", "StoreStats", "instrument_store"]
