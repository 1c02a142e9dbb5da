"""``authstate.metrics.Collector`` in an application's own registry: counters built on the
events, cache lookups, bus state and store-call latency, read at scrape time; and the
OpenTelemetry span around each store call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from authstate import AuthState, InvalidCredentials, TooManyAttempts
from authstate.metrics import Collector
from tests.events.conftest import PASSWORD, fast_hasher

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["stateless", "session", "hybrid"])
async def auth(request: pytest.FixtureRequest) -> AsyncIterator[AuthState]:
    started = AuthState(
        mode=request.param,
        store="memory://",
        login_max_attempts=1,
        password_hasher=fast_hasher(),
    )
    async with started:
        await started.accounts.add_user("alice", PASSWORD)
        yield started


def scrape(registry: CollectorRegistry) -> dict[str, float]:
    samples: dict[str, float] = {}
    text = generate_latest(registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def test_counters_follow_what_happened(auth: AuthState) -> None:
    registry = CollectorRegistry()
    registry.register(Collector(auth))
    user = await auth.verify_login("alice", PASSWORD, ip="10.0.0.1")
    issued = await auth.login(user.id)
    for _ in range(3):
        auth.mode.authenticate_from_memory(issued.auth_value) or await auth.authenticate(
            issued.auth_value
        )
    with pytest.raises(InvalidCredentials):
        await auth.verify_login("alice", "wrong password", ip="10.0.0.2")
    with pytest.raises(TooManyAttempts):
        await auth.verify_login("alice", PASSWORD, ip="10.0.0.3")
    await auth.logout(issued.principal)
    await auth.logout_everywhere(user.id)
    got = scrape(registry)
    assert got["authstate_logins_total{}"] == 1
    assert got["authstate_login_failures_total{}"] == 1
    assert got["authstate_login_throttled_total{}"] == 1
    assert got["authstate_revocations_total{reason=logout}"] == 1
    assert got["authstate_revocations_total{reason=logout_all}"] == 1
    assert got["authstate_events_total{event=login}"] == 1
    assert got["authstate_bus_healthy{}"] == 1
    cache = "session" if auth.settings.mode == "session" else "token"
    assert got[f"authstate_cache_lookups_total{{cache={cache},result=hit}}"] >= 2
    # Every store call is in the histogram: the login read the user by name.
    assert got["authstate_store_call_seconds_count{operation=get_user_by_name}"] == 3
    assert got["authstate_store_call_seconds_bucket{le=+Inf,operation=get_user_by_name}"] == 3


async def test_a_warm_request_adds_no_store_call(auth: AuthState) -> None:
    issued = await auth.login("u1")
    await auth.authenticate(issued.auth_value)
    before = auth.store_stats.snapshot()
    for _ in range(5):
        assert auth.mode.authenticate_from_memory(issued.auth_value) is not None
    assert auth.store_stats.snapshot() == before


async def test_each_store_call_is_an_opentelemetry_span(auth: AuthState) -> None:
    """With the otel extra, a store call opens ``authstate.store.<operation>``."""
    from authstate.telemetry import tracing

    opened: list[tuple[str, dict[str, object]]] = []

    class Recording:
        def start_as_current_span(self, name: str, **kwargs: object) -> object:
            import contextlib

            opened.append((name, dict(kwargs.get("attributes") or {})))
            return contextlib.nullcontext()

    assert tracing._tracer is not None  # opentelemetry-api is installed here
    real, tracing._tracer = tracing._tracer, Recording()
    try:
        await auth.login("u1")
    finally:
        tracing._tracer = real
    assert opened, "no span around the login's store writes"
    assert all(name.startswith("authstate.store.") for name, _ in opened)
    assert {attrs.get("db.system") for _, attrs in opened} == {"memory"}


def test_without_an_sdk_no_span_is_opened_and_one_installed_later_is_heard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API alone: store_span opens nothing (a span would record nothing and cost µs).
    An SDK provider installed afterwards is noticed within the recheck interval."""
    from opentelemetry import trace

    from authstate.telemetry import tracing

    monkeypatch.setattr(tracing, "_sdk_installed", False)
    monkeypatch.setattr(tracing, "_recheck_at", 0.0)
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert tracing.store_span("get_session", "memory") is tracing._NO_SPAN

    class SDKProvider(trace.TracerProvider):  # what an SDK installs: a real provider
        def get_tracer(self, *args: object, **kwargs: object) -> trace.Tracer:
            return trace.NoOpTracer()

    installed = SDKProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: installed)
    monkeypatch.setattr(tracing, "_recheck_at", 0.0)  # as if the interval had passed
    assert tracing.store_span("get_session", "memory") is not tracing._NO_SPAN
