from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from authstate import AuthState
from authstate._time import FrozenClock
from authstate.settings import Settings

MakeAuth = Callable[..., Awaitable[AuthState]]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def make_auth(clock: FrozenClock) -> AsyncIterator[MakeAuth]:
    started: list[AuthState] = []

    async def make(mode: str, store: str = "memory://", **overrides: Any) -> AuthState:
        settings = Settings.from_env({}, mode=mode, store=store, **overrides)
        auth = AuthState(settings, clock=clock)
        await auth.start()
        started.append(auth)
        return auth

    yield make
    for auth in started:
        await auth.stop()
