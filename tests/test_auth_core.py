"""``AuthState`` before ``start()``: every part that start() builds refuses with one clear
error instead of an AttributeError on None somewhere below."""

from __future__ import annotations

import pytest

from authstate import AuthState

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("part", ["context", "mode", "tokens", "accounts", "csrf", "store"])
def test_a_part_read_before_start_says_start_has_not_run(part: str) -> None:
    auth = AuthState(store="memory://")
    with pytest.raises(RuntimeError, match=r"start\(\) has not run"):
        getattr(auth, part)


async def test_after_start_the_parts_are_there() -> None:
    async with AuthState(store="memory://", mode="session") as auth:
        assert auth.mode.name == "session"
        assert auth.context.settings is auth.settings
        assert auth.accounts is auth.accounts and auth.csrf is auth.csrf
        assert len(auth.tokens) == 0
