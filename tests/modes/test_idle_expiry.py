"""A session in use never idles out, whatever durations the settings accept.

Use is written to the store at most once per write interval, so the last use can lie up
to one interval after the last recorded one. With ``AUTHSTATE_IDLE_TTL`` below the old
fixed 60 s interval a session died while in use (chaos/issue 11 item 7). The property:
for every combination of duration settings that ``Settings`` accepts, a session used at
gaps shorter than the idle lifetime stays alive until its absolute expiry, on whichever of
two nodes (own caches, one store) each request lands; and one left alone for the idle
lifetime plus one write interval is refused.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from authstate import AuthState
from authstate._time import FrozenClock
from authstate.errors import AuthenticationError, ConfigurationError
from authstate.settings import MAX_DURATION, Settings
from authstate.stores.memory import MemoryStore

SECRET = b"idle-expiry-property-secret-" + b"x" * 16
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@st.composite
def duration_text(draw: st.DrawFn, *, low: int = 0, high: int | None = None) -> str:
    """A duration as an operator writes it: ``45s``, ``15m``, ``12h``, ``7d`` or seconds."""
    top = int(MAX_DURATION.total_seconds()) if high is None else high
    unit = draw(st.sampled_from(["", "s", "m", "h", "d"]))
    size = _UNITS.get(unit, 1)
    count = draw(st.integers(min_value=-(-low // size), max_value=max(top // size, 1)))
    return f"{count}{unit}"


@st.composite
def accepted_settings(draw: st.DrawFn) -> Settings:
    """Every duration setting drawn in its textual form; combinations Settings refuses are
    discarded, so what remains is exactly what an operator can configure."""
    durations = {
        "idle_ttl": draw(st.one_of(duration_text(low=1, high=600), duration_text(low=1))),
        "session_ttl": draw(duration_text(low=1)),
        "last_seen_interval": draw(st.one_of(duration_text(high=600), duration_text())),
        "access_ttl": draw(duration_text(low=1)),
        "refresh_ttl": draw(duration_text(low=1)),
        "refresh_grace": draw(duration_text(high=60)),
        "login_window": draw(duration_text(low=1)),
        "leeway": draw(duration_text(high=300)),
        "max_staleness": draw(duration_text(low=1, high=60)),
    }
    try:
        return Settings(mode="session", store="memory://", secret=SECRET, **durations)
    except ConfigurationError:
        assume(False)
        raise  # unreachable: assume(False) raises


async def alive(node: AuthState, cookie: str) -> bool:
    try:
        await node.authenticate(cookie)
    except AuthenticationError:
        return False
    return True


async def run(config: Settings, gap_fractions: list[float], nodes_used: list[int]) -> None:
    clock = FrozenClock()
    store = MemoryStore(clock=clock)
    nodes = [AuthState(config, store=store, clock=clock) for _ in range(2)]
    for node in nodes:
        await node.start()
    try:
        idle = config.idle_ttl.total_seconds()
        issued = await nodes[0].login("u1")
        expires_at = issued.expires_at
        for fraction, index in zip(gap_fractions, nodes_used, strict=False):
            clock.advance(idle * fraction)  # strictly shorter than the idle lifetime
            expected = clock.now() < expires_at
            assert await alive(nodes[index], issued.auth_value) is expected, (
                f"idle {idle}s, write interval {config.last_seen_interval_seconds}s:"
                f" a session used {idle * fraction:.3f}s after its last use"
                f" {'died' if expected else 'outlived its absolute expiry'}"
            )
            if not expected:
                return
        # Left alone for the idle lifetime plus one write interval: refused on both nodes.
        clock.advance(config.session_idle_seconds)
        for node in nodes:
            assert not await alive(node, issued.auth_value)
    finally:
        for node in nodes:
            await node.stop()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    config=accepted_settings(),
    gap_fractions=st.lists(
        st.floats(min_value=0.0, max_value=0.999, allow_nan=False), min_size=1, max_size=12
    ),
    nodes_used=st.lists(st.integers(min_value=0, max_value=1), min_size=12, max_size=12),
)
def test_a_session_used_more_often_than_its_idle_lifetime_never_idles_out(
    config: Settings, gap_fractions: list[float], nodes_used: list[int]
) -> None:
    asyncio.run(run(config, gap_fractions, nodes_used))


def test_the_write_interval_is_at_most_a_quarter_of_the_idle_lifetime() -> None:
    short = Settings(idle_ttl="20s")
    assert short.last_seen_interval_seconds == 5.0
    assert short.session_idle_seconds == 25.0
    default = Settings()
    assert default.last_seen_interval_seconds == 60.0  # AUTHSTATE_LAST_SEEN_INTERVAL rules
    assert default.session_idle_seconds == timedelta(days=1).total_seconds() + 60
    assert Settings(idle_ttl="1h", last_seen_interval="0").last_seen_interval_seconds == 0.0
