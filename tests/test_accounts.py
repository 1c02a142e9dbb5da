"""What a user name and a role are, enforced where users are made (``accounts.add_user``),
so the library, the server and the command refuse the same names."""

from __future__ import annotations

import asyncio

import pytest

from authstate import AuthState, BadRequest, FrozenClock, Settings
from authstate.accounts import check_new_username, check_roles
from authstate.passwords import PasswordHasher

PASSWORD = "correct horse battery"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("José", "josé"),
        ("\uff42\uff4f\uff42", "bob"),  # fullwidth letters: NFKC
        ("carol@example.org", "carol@example.org"),
        ("ops.team_1-b", "ops.team_1-b"),
        ("x" * 64, "x" * 64),
    ],
)
def test_user_names_are_letters_digits_and_dot_underscore_dash_at(given: str, stored: str) -> None:
    assert check_new_username(given) == stored


@pytest.mark.parametrize(
    "name",
    ["", " ", "bad name!", "<b>eve</b>", "o'brien", "a\u202eb", "tab\tname", "x" * 65, "a/b"],
)
def test_other_user_names_are_refused(name: str) -> None:
    with pytest.raises(BadRequest):
        check_new_username(name)


@pytest.mark.parametrize("roles", [("",), (" admin",), ("a b",), ("rôle",), ("x" * 65,)])
def test_malformed_roles_are_refused(roles: tuple[str, ...]) -> None:
    with pytest.raises(BadRequest):
        check_roles(roles)


def test_add_user_refuses_a_bad_name_or_role_and_stores_nothing() -> None:
    async def scenario() -> list[str]:
        hasher = PasswordHasher(memory_kib=64, time_cost=1, unsafe_allow_weak_parameters=True)
        settings = Settings.from_env({}, store="memory://")
        async with AuthState(settings, clock=FrozenClock(), password_hasher=hasher) as auth:
            with pytest.raises(BadRequest, match="user name"):
                await auth.accounts.add_user("bad name!", PASSWORD)
            with pytest.raises(BadRequest, match="role"):
                await auth.accounts.add_user("bob", PASSWORD, ("",))
            return [u.username for u in await auth.store.list_users()]

    assert asyncio.run(scenario()) == []
