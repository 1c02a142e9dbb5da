"""The revocation state stays bounded by credential lifetimes and applies changes idempotently."""

from __future__ import annotations

import pytest

from authstate._time import FrozenClock
from authstate.errors import InvalidToken
from authstate.revocation import RevocationState
from authstate.session_cache import SessionCache
from authstate.stores.base import Change, ChangeKind, SessionRecord


def test_revoked_entries_are_forgotten_once_their_credentials_expired() -> None:
    clock = FrozenClock()
    state = RevocationState(clock)
    now = clock.now()
    for i in range(1000):
        state.apply(Change(ChangeKind.JTI, f"jti{i}", until=now + 900))
    state.apply(Change(ChangeKind.USER, "u1", until=now + 900, generation=2))
    assert len(state) == 1001
    clock.advance(901)
    state.prune()
    assert len(state) == 0


def test_applying_a_change_twice_is_harmless_and_generations_only_go_up() -> None:
    clock = FrozenClock()
    state = RevocationState(clock)
    newer = Change(ChangeKind.USER, "u1", until=clock.now() + 60, generation=3)
    older = Change(ChangeKind.USER, "u1", until=clock.now() + 60, generation=2)
    state.apply(newer)
    state.apply(newer)
    state.apply(older)
    assert state.minimum_generation("u1") == 3
    with pytest.raises(InvalidToken):
        state.check(user_id="u1", generation=2)
    state.check(user_id="u1", generation=3)


def test_a_revoked_sid_or_jti_is_refused() -> None:
    state = RevocationState(FrozenClock())
    state.apply(Change(ChangeKind.SID, "h1", until=2e9))
    state.apply(Change(ChangeKind.JTI, "j1", until=2e9))
    with pytest.raises(InvalidToken):
        state.check(user_id="u", generation=0, handle="h1")
    with pytest.raises(InvalidToken):
        state.check(user_id="u", generation=0, jti="j1")
    state.check(user_id="u", generation=0, handle="h2", jti="j2")


def _record(i: int) -> SessionRecord:
    return SessionRecord(
        key=f"k{i}",
        handle=f"h{i}",
        user_id="u",
        kind="session",
        created_at=0,
        last_seen_at=0,
        expires_at=1e10,
        idle_timeout=0,
    )


def test_the_session_cache_is_bounded_and_drops_by_handle() -> None:
    cache = SessionCache(max_entries=10)
    for i in range(50):
        cache.put(_record(i))
    assert len(cache) == 10
    assert cache.get("k0") is None and cache.get("k49") is not None
    cache.drop_handle("h49")
    assert cache.get("k49") is None
