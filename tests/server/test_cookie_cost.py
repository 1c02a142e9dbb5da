"""The dashboard's cookie cost figures: measured once per node, kept, and after a failure
tried again only once a while has passed (a down store is not read on every page view)."""

from __future__ import annotations

import pytest

from authstate import AuthenticationError, AuthState, FrozenClock, StoreUnavailable
from authstate.server import cookie_cost
from authstate.server.cookie_cost import CookieCosts, Timings

ALL_MODES = ("stateless", "session", "hybrid")

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_the_figures_are_measured_with_the_first_cookie_and_kept(mode: str) -> None:
    clock = FrozenClock()
    async with AuthState(mode=mode, store="memory://", clock=clock) as auth:
        first = (await auth.login("u1", [])).auth_value
        second = (await auth.login("u2", [])).auth_value
        costs = CookieCosts(auth)
        measured = await costs.for_cookie(first)
        clock.advance(5)
        kept = await costs.for_cookie(second)
    assert measured is not None and kept is not None
    assert measured.verify_us > 0 and measured.warm_us > 0
    assert (kept.verify_us, kept.warm_us, kept.measured_at) == (
        measured.verify_us,
        measured.warm_us,
        measured.measured_at,
    )
    assert kept.size_bytes == len(f"{auth.cookie_policy.auth_cookie_name}={second}")


async def test_a_failed_measurement_is_tried_again_only_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = []

    async def store_down(*args: object, **kwargs: object) -> Timings:
        attempts.append(1)
        raise StoreUnavailable(reason="store down for the test")

    clock = FrozenClock()
    async with AuthState(mode="session", store="memory://", clock=clock) as auth:
        value = (await auth.login("u1", [])).auth_value
        costs = CookieCosts(auth, retry_after=60)
        monkeypatch.setattr(cookie_cost, "measure_cookie_cost", store_down)
        with pytest.raises(StoreUnavailable):
            await costs.for_cookie(value)
        clock.advance(59)
        for _ in range(3):
            assert await costs.for_cookie(value) is None
        assert len(attempts) == 1
        monkeypatch.undo()
        clock.advance(2)
        assert await costs.for_cookie(value) is not None


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_first_sight_check_leaves_the_node_s_caches_as_they_were(mode: str) -> None:
    async with AuthState(mode=mode, store="memory://", clock=FrozenClock()) as auth:
        value = (await auth.login("u1", [])).auth_value
        principal = await auth.authenticate(value)
        await cookie_cost.measure_cookie_cost(auth, value, repeat=3)
        assert auth.mode.authenticate_from_memory(value) == principal


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_cookie_s_cost_is_its_size_and_two_verification_times(mode: str) -> None:
    async with AuthState(mode=mode, store="memory://", clock=FrozenClock()) as auth:
        value = (await auth.login("u1", ["staff"])).auth_value
        cost = await CookieCosts(auth).for_cookie(value)
        assert cost is not None
        assert cost.size_bytes == len(f"{auth.cookie_policy.auth_cookie_name}={value}")
        assert cost.verify_us > 0 and cost.warm_us > 0
        # Still valid and cached afterwards: this node answers the next request from memory.
        assert auth.mode.authenticate_from_memory(value) is not None
        assert (await auth.authenticate(value)).user_id == "u1"


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_cookie_that_is_not_valid_is_not_measured(mode: str) -> None:
    async with AuthState(mode=mode, store="memory://", clock=FrozenClock()) as auth:
        value = (await auth.login("u1", [])).auth_value
        with pytest.raises(AuthenticationError):
            await CookieCosts(auth).for_cookie(value[:-2] + ("xx" if value[-2:] != "xx" else "yy"))
        with pytest.raises(ValueError, match="repeat"):
            await cookie_cost.measure_cookie_cost(auth, value, repeat=0)
