"""Every operation of ``AuthState`` emits its lifecycle event, in every mode, on SQLite,
Redis and PostgreSQL, after its change is durable: what a subscriber reads when it hears
the event is the state after the change."""

from __future__ import annotations

import pytest

from authstate import (
    AuthenticationError,
    AuthState,
    InvalidCredentials,
    InvalidRefresh,
    TooManyAttempts,
)
from authstate.events import (
    AuthEvent,
    KeyRotated,
    LoggedOut,
    LoggedOutEverywhere,
    LoginFailed,
    LoginSucceeded,
    LoginThrottled,
    PasswordChanged,
    Refreshed,
    RefreshReuseDetected,
    SessionRevoked,
    UserDisabled,
)
from authstate.modes.client import ClientInfo
from tests.events.conftest import IP, PASSWORD, Recorder

pytestmark = [pytest.mark.anyio, pytest.mark.services]


async def still_valid(auth: AuthState, auth_value: str) -> bool:
    try:
        await auth.authenticate(auth_value)
    except AuthenticationError:
        return False
    return True


def valid_in_memory(auth: AuthState, auth_value: str) -> bool:
    """What this node answers from memory at this instant (a sync subscriber's view)."""
    try:
        return auth.mode.authenticate_from_memory(auth_value) is not None
    except AuthenticationError:
        return False


async def test_a_login_emits_login_succeeded_with_the_session_handle(
    auth: AuthState, recorder: Recorder
) -> None:
    user = await auth.verify_login("alice", PASSWORD, ip=IP)
    issued = await auth.login(user.id, user.roles, client=ClientInfo("Firefox", IP))
    (event,) = recorder.of(LoginSucceeded)
    assert event.user_id == user.id and event.mode == auth.settings.mode
    assert event.ip == IP and event.user_agent == "Firefox"
    session = issued.principal.session
    assert event.session_id == (session.id if session is not None else None)
    assert event.at > 0


async def test_failed_and_throttled_logins_emit_their_events(
    auth: AuthState, recorder: Recorder
) -> None:
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await auth.verify_login("alice", "wrong password!", ip=IP)
    with pytest.raises(TooManyAttempts):
        await auth.verify_login("alice", PASSWORD, ip=IP)
    failed = recorder.of(LoginFailed)
    assert [(e.ip, e.error) for e in failed] == [(IP, "invalid_credentials")] * 2
    (throttled,) = recorder.of(LoginThrottled)
    assert throttled.ip == IP and throttled.retry_after > 0
    assert recorder.of(LoginSucceeded) == []


async def test_failed_and_throttled_step_ups_emit_the_login_events(
    auth: AuthState, recorder: Recorder
) -> None:
    user = await auth.verify_login("alice", PASSWORD, ip=IP)
    principal = (await auth.login(user.id, user.roles)).principal
    client = ClientInfo("Firefox", IP)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await auth.reauthenticate(principal, "wrong password!", client=client)
    with pytest.raises(TooManyAttempts):
        await auth.reauthenticate(principal, PASSWORD, client=client)
    failed = recorder.of(LoginFailed)
    assert [(e.ip, e.error) for e in failed] == [(IP, "invalid_credentials")] * 2
    (throttled,) = recorder.of(LoginThrottled)
    assert throttled.ip == IP and throttled.retry_after > 0


async def test_logout_is_heard_after_the_credential_is_revoked(
    auth: AuthState, recorder: Recorder
) -> None:
    issued = await auth.login("u1", ["staff"])
    assert valid_in_memory(auth, issued.auth_value) or await still_valid(auth, issued.auth_value)
    verdicts: list[bool] = []

    def check(event: AuthEvent) -> None:
        # Synchronous: runs inside emit(), so it sees exactly what was done before it.
        verdicts.append(valid_in_memory(auth, issued.auth_value))

    auth.subscribe(check, LoggedOut)
    await auth.logout(issued.principal)
    (event,) = recorder.of(LoggedOut)
    assert event.user_id == "u1"
    if auth.settings.mode != "stateless":
        assert event.session_id == issued.principal.binding
    assert verdicts == [False]


async def test_logout_everywhere_is_heard_after_every_credential_died(
    auth: AuthState, recorder: Recorder
) -> None:
    first = await auth.login("u1", [])
    second = await auth.login("u1", [])
    verdicts: list[bool] = []

    def check(event: AuthEvent) -> None:
        for issued in (first, second):
            verdicts.append(valid_in_memory(auth, issued.auth_value))

    auth.subscribe(check, LoggedOutEverywhere)
    await auth.logout_everywhere("u1")
    assert [e.user_id for e in recorder.of(LoggedOutEverywhere)] == ["u1"]
    assert verdicts == [False, False]


async def test_password_change_set_password_and_disable_emit_one_event_each(
    auth: AuthState, recorder: Recorder
) -> None:
    alice = await auth.accounts.get_by_name("alice")
    issued = await auth.login(alice.id, alice.roles)
    await auth.change_password(issued.principal, PASSWORD, "a brand new password")
    await auth.set_password(alice.id, "an admin's reset password")
    await auth.disable_user(alice.id)
    names = [e.name for e in recorder.events if not isinstance(e, LoginSucceeded)]
    # One event per operation: a password change is not also a "logout everywhere" and
    # the fresh credentials it hands back are not a login.
    assert names == ["password_changed", "password_changed", "user_disabled"]
    assert {e.user_id for e in recorder.of(PasswordChanged)} == {alice.id}
    assert [e.user_id for e in recorder.of(UserDisabled)] == [alice.id]
    assert len(recorder.of(LoginSucceeded)) == 1


@pytest.mark.parametrize("mode", ["session", "hybrid"])
async def test_a_revoked_session_emits_session_revoked(auth: AuthState, recorder: Recorder) -> None:
    keep = await auth.login("u1", [])
    other = await auth.login("u1", [])
    handle = other.principal.binding
    await auth.revoke_session(keep.principal, handle)
    (event,) = recorder.of(SessionRevoked)
    assert (event.user_id, event.session_id) == ("u1", handle)


@pytest.mark.parametrize("mode", ["hybrid"])
async def test_refresh_and_reuse_emit_their_events(auth: AuthState, recorder: Recorder) -> None:
    issued = await auth.login("u1", [])
    assert issued.refresh_value is not None
    rotated = await auth.refresh(issued.refresh_value)
    (refreshed,) = recorder.of(Refreshed)
    assert refreshed.user_id == "u1" and refreshed.session_id == issued.principal.binding
    with pytest.raises(InvalidRefresh):
        await auth.refresh(issued.refresh_value)  # the rotated token again: theft
    (reuse,) = recorder.of(RefreshReuseDetected)
    assert (reuse.user_id, reuse.session_id) == ("u1", issued.principal.binding)
    assert not await still_valid(auth, rotated.auth_value)


async def test_a_key_rotation_emits_key_rotated(auth: AuthState, recorder: Recorder) -> None:
    kid, alg = await auth.rotate_key()
    (event,) = recorder.of(KeyRotated)
    assert (event.kid, event.alg) == (kid, alg)
    assert auth.context.keys.ring.signing_key().kid == kid
