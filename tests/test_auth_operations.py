"""``AuthState.refresh(bound_to=, csrf=)`` and ``AuthState.change_password``: the rules
behind ``/auth/refresh`` and ``/auth/password``, called as a library user would.

A refresh token only ever rotates its own family: beside another principal's access
cookie, or with a CSRF token of another binding, it is refused and nothing changes (red
team F3), on the current token and on a grace-window repeat alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from authstate import AuthState
from authstate._time import FrozenClock
from authstate.crypto.ids import hash_secret
from authstate.csrf import CSRFEvidence
from authstate.errors import AuthenticationError, CSRFError, InvalidCredentials, InvalidRefresh
from authstate.modes.base import IssuedCredentials
from authstate.passwords import PasswordHasher
from authstate.settings import Settings

pytestmark = pytest.mark.anyio

ORIGIN = "https://app.test"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def auth(clock: FrozenClock) -> AsyncIterator[AuthState]:
    settings = Settings.from_env({}, mode="hybrid", store="memory://")
    hasher = PasswordHasher(memory_kib=64, time_cost=1, unsafe_allow_weak_parameters=True)
    async with AuthState(settings, clock=clock, password_hasher=hasher) as started:
        yield started


def evidence(token: str | None, origin: str | None = ORIGIN) -> CSRFEvidence:
    return CSRFEvidence(
        method="POST", origin=origin, sec_fetch_site=None, token=token, own_origin=ORIGIN
    )


def refresh_of(issued: IssuedCredentials) -> str:
    assert issued.refresh_value is not None
    return issued.refresh_value


async def is_current(auth: AuthState, refresh_value: str) -> bool:
    return await auth.store.get_session(hash_secret(refresh_value)) is not None


async def test_a_token_of_another_family_is_refused_and_rotates_nothing(auth: AuthState) -> None:
    alice = await auth.login("alice")
    mallory = await auth.login("mallory")
    with pytest.raises(InvalidRefresh):
        await auth.refresh(refresh_of(mallory), bound_to=alice.principal)
    assert await is_current(auth, refresh_of(mallory))
    assert await is_current(auth, refresh_of(alice))
    own = await auth.refresh(refresh_of(alice), bound_to=alice.principal)
    assert own.principal.user_id == "alice"


async def test_a_grace_window_repeat_of_another_family_is_refused(
    auth: AuthState, clock: FrozenClock
) -> None:
    alice = await auth.login("alice")
    mallory = await auth.login("mallory")
    successor = refresh_of(await auth.refresh(refresh_of(mallory)))
    clock.advance(1)
    with pytest.raises(InvalidRefresh):
        await auth.refresh(refresh_of(mallory), bound_to=alice.principal)
    # Mallory's own repeat still gets the same successor: the refusal changed nothing.
    again = await auth.refresh(refresh_of(mallory), bound_to=mallory.principal)
    assert again.refresh_value == successor


async def test_the_csrf_token_is_checked_against_the_family(auth: AuthState) -> None:
    alice = await auth.login("alice")
    mallory = await auth.login("mallory")
    family = alice.principal.binding
    for refused in (
        evidence(None),
        evidence(auth.csrf_token(mallory.principal.binding)),
        evidence(auth.csrf_token(family), origin="https://evil.test"),
    ):
        with pytest.raises(CSRFError):
            await auth.refresh(refresh_of(alice), csrf=refused)
    assert await is_current(auth, refresh_of(alice))
    # No access cookie (it expired): the CSRF token for the family is enough.
    rotated = await auth.refresh(refresh_of(alice), csrf=evidence(auth.csrf_token(family)))
    assert rotated.principal.binding == family


async def test_a_grace_window_repeat_needs_the_familys_csrf_token(
    auth: AuthState, clock: FrozenClock
) -> None:
    alice = await auth.login("alice")
    mallory = await auth.login("mallory")
    successor = refresh_of(await auth.refresh(refresh_of(alice)))
    clock.advance(1)
    with pytest.raises(CSRFError):
        await auth.refresh(
            refresh_of(alice), csrf=evidence(auth.csrf_token(mallory.principal.binding))
        )
    token = auth.csrf_token(alice.principal.binding)
    again = await auth.refresh(refresh_of(alice), csrf=evidence(token))
    assert again.refresh_value == successor


async def test_a_malformed_token_is_an_invalid_refresh_with_or_without_checks(
    auth: AuthState,
) -> None:
    alice = await auth.login("alice")
    for bound_to in (None, alice.principal):
        with pytest.raises(InvalidRefresh):
            await auth.refresh("not a token", bound_to=bound_to)


async def test_change_password_revokes_every_other_credential_and_reissues(
    auth: AuthState,
) -> None:
    user = await auth.accounts.add_user("carol", PASSWORD)
    phone = await auth.login(user.id)
    laptop = await auth.login(user.id)
    with pytest.raises(InvalidCredentials):
        await auth.change_password(laptop.principal, "wrong password", PASSWORD + "!")
    await auth.authenticate(phone.auth_value)  # a refused change revoked nothing

    fresh = await auth.change_password(laptop.principal, PASSWORD, PASSWORD + "!")
    for old in (phone, laptop):
        with pytest.raises(AuthenticationError):
            await auth.authenticate(old.auth_value)
        with pytest.raises(InvalidRefresh):
            await auth.refresh(refresh_of(old))
    assert (await auth.authenticate(fresh.auth_value)).user_id == user.id
    await auth.accounts.verify_login("carol", PASSWORD + "!", ip="127.0.0.1")


async def test_a_reuse_revokes_the_family_even_when_the_checks_would_refuse(
    auth: AuthState, clock: FrozenClock
) -> None:
    """Theft detection is not gated by the caller checks: a thief replaying an old token
    with another account's access cookie or no CSRF token still kills the family."""
    alice = await auth.login("alice")
    mallory = await auth.login("mallory")
    successor = refresh_of(await auth.refresh(refresh_of(alice)))
    clock.advance(auth.settings.refresh_grace_seconds + 1)
    with pytest.raises(InvalidRefresh):
        await auth.refresh(refresh_of(alice), bound_to=mallory.principal, csrf=evidence(None))
    assert not await is_current(auth, successor)
    with pytest.raises(InvalidRefresh):
        await auth.refresh(successor)
