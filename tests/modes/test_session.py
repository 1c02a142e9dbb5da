"""Session mode: opaque IDs, hashed at rest, idle and absolute expiry, fixation defence."""

from __future__ import annotations

import pytest

from authstate._time import FrozenClock
from authstate.crypto.ids import hash_secret
from authstate.errors import AuthenticationError, NotFound
from authstate.modes.client import ClientInfo
from authstate.modes.session import SessionMode
from tests.modes.conftest import MakeAuth

pytestmark = pytest.mark.anyio


async def test_the_cookie_is_an_opaque_256_bit_id_stored_only_hashed(make_auth: MakeAuth) -> None:
    auth = await make_auth("session")
    issued = await auth.login("u1", ["staff"], client=ClientInfo("Firefox", "10.0.0.1"))
    assert len(issued.auth_value) == 43 and "." not in issued.auth_value
    assert await auth.store.get_session(issued.auth_value) is None
    record = await auth.store.get_session(hash_secret(issued.auth_value))
    assert record is not None
    assert record.handle != issued.auth_value and record.key != issued.auth_value
    assert (record.user_agent, record.ip) == ("Firefox", "10.0.0.1")
    principal = await auth.authenticate(issued.auth_value)
    assert principal.user_id == "u1" and principal.roles == ("staff",)
    assert principal.session is not None and principal.session.id == record.handle


async def test_login_destroys_the_session_the_browser_had(make_auth: MakeAuth) -> None:
    auth = await make_auth("session")
    planted = await auth.login("u1", [])
    fresh = await auth.login("u1", [], previous_auth=planted.auth_value)
    assert fresh.auth_value != planted.auth_value
    with pytest.raises(AuthenticationError):
        await auth.authenticate(planted.auth_value)
    await auth.authenticate(fresh.auth_value)


async def test_an_unknown_or_malformed_id_is_unauthenticated(make_auth: MakeAuth) -> None:
    auth = await make_auth("session")
    for value in ("A" * 43, "short", "x" * 5000, "'; DROP TABLE sessions; --"):
        with pytest.raises(AuthenticationError):
            await auth.authenticate(value)


async def test_idle_sessions_expire_and_activity_slides_the_idle_window(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("session", idle_ttl="1h", last_seen_interval="60s")
    active = await auth.login("u1", [])
    idle = await auth.login("u1", [])
    for _ in range(3):
        clock.advance(40 * 60)
        await auth.authenticate(active.auth_value)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(idle.auth_value)


async def test_sessions_expire_at_the_absolute_lifetime_despite_activity(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("session", session_ttl="2h", idle_ttl="1h")
    issued = await auth.login("u1", [])
    clock.advance(50 * 60)
    await auth.authenticate(issued.auth_value)
    clock.advance(50 * 60)
    await auth.authenticate(issued.auth_value)
    clock.advance(21 * 60)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_last_seen_is_written_at_most_once_per_interval(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("session", last_seen_interval="60s")
    issued = await auth.login("u1", [])
    key = hash_secret(issued.auth_value)
    start = (await auth.store.get_session(key)).last_seen_at  # type: ignore[union-attr]
    clock.advance(30)
    await auth.authenticate(issued.auth_value)
    assert (await auth.store.get_session(key)).last_seen_at == start  # type: ignore[union-attr]
    clock.advance(31)
    await auth.authenticate(issued.auth_value)
    assert (await auth.store.get_session(key)).last_seen_at == start + 61  # type: ignore[union-attr]


async def test_a_privilege_change_rotates_the_id_and_the_old_one_dies(make_auth: MakeAuth) -> None:
    auth = await make_auth("session")
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)  # cached
    mode = auth.mode
    assert isinstance(mode, SessionMode)
    rotated = await mode.rotate(issued.auth_value, roles=("admin",))
    assert rotated.auth_value != issued.auth_value
    assert (await auth.authenticate(rotated.auth_value)).roles == ("admin",)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_logout_deletes_the_session_even_when_cached(make_auth: MakeAuth) -> None:
    auth = await make_auth("session")
    issued = await auth.login("u1", [])
    principal = await auth.authenticate(issued.auth_value)
    await auth.logout(principal)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)
    assert await auth.store.get_session(hash_secret(issued.auth_value)) is None


async def test_users_list_and_revoke_their_own_sessions_only(make_auth: MakeAuth) -> None:
    auth = await make_auth("session")
    mine = await auth.login("u1", [], client=ClientInfo("A", "1.1.1.1"))
    other_device = await auth.login("u1", [], client=ClientInfo("B", "2.2.2.2"))
    theirs = await auth.login("u2", [])
    me = await auth.authenticate(mine.auth_value)
    listed = await auth.list_sessions(me)
    assert {r.user_agent for r in listed} == {"A", "B"}
    them = await auth.authenticate(theirs.auth_value)
    with pytest.raises(NotFound):
        await auth.revoke_session(me, them.session.id)  # type: ignore[union-attr]
    await auth.authenticate(theirs.auth_value)
    device = await auth.authenticate(other_device.auth_value)
    await auth.revoke_session(me, device.session.id)  # type: ignore[union-attr]
    with pytest.raises(AuthenticationError):
        await auth.authenticate(other_device.auth_value)
    with pytest.raises(NotFound):
        await auth.revoke_session(me, "no-such-handle")


async def test_logout_everywhere_ends_every_session_of_the_user(make_auth: MakeAuth) -> None:
    auth = await make_auth("session")
    sessions = [await auth.login("u1", []) for _ in range(3)]
    for issued in sessions:
        await auth.authenticate(issued.auth_value)
    await auth.logout_everywhere("u1")
    for issued in sessions:
        with pytest.raises(AuthenticationError):
            await auth.authenticate(issued.auth_value)
    again = await auth.login("u1", [])
    await auth.authenticate(again.auth_value)


async def test_a_session_revoked_on_another_node_is_not_served_from_this_nodes_cache(
    make_auth: MakeAuth, tmp_path: object
) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    node_a = await make_auth("session", store=url, secret="s" * 40)
    node_b = await make_auth("session", store=url, secret="s" * 40)
    issued = await node_a.login("u1", [])
    principal = await node_b.authenticate(issued.auth_value)  # node B caches it
    await node_a.logout(principal)
    import anyio

    with anyio.fail_after(2):
        while True:
            try:
                await node_b.authenticate(issued.auth_value)
            except AuthenticationError:
                break
            await anyio.sleep(0.05)


async def test_a_sqlite_deployment_keeps_a_generated_secret_beside_the_database(
    make_auth: MakeAuth, tmp_path: object
) -> None:
    import os
    import stat
    from pathlib import Path

    db = Path(str(tmp_path)) / "app.db"
    first = await make_auth("session", store=f"sqlite:///{db}")
    issued = await first.login("u1", [])
    secret_file = Path(f"{db}.secret")
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    await first.stop()
    # A restarted node (same file, same generated secret) unseals the keys and knows the session.
    second = await make_auth("session", store=f"sqlite:///{db}")
    assert (await second.authenticate(issued.auth_value)).user_id == "u1"


async def test_a_cached_session_the_store_no_longer_has_dies_at_its_next_activity_write(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    # Chaos report F2: the store lost the session (no change told the node), and the
    # throttled last_seen write on the missing record "succeeded", re-caching it for days.
    auth = await make_auth("session")
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)  # cached
    await auth.store.delete_session(hash_secret(issued.auth_value))  # behind the bus's back
    clock.advance(auth.settings.last_seen_interval_seconds)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)
    assert auth.context.sessions.get(hash_secret(issued.auth_value)) is None


@pytest.mark.parametrize("mode", ["session", "hybrid"])
async def test_by_default_one_user_keeps_at_most_100_sessions(
    make_auth: MakeAuth, clock: FrozenClock, mode: str
) -> None:
    """A client that logs in on every call and never logs out cannot pile up sessions on
    one account: the 101st login ends the oldest (on Redis every write to a user's
    sessions grows with their number)."""
    auth = await make_auth(mode)
    issued = []
    for _ in range(101):
        issued.append(await auth.login("u1", []))
        clock.advance(1)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued[0].auth_value)
    assert len(await auth.mode.list_sessions_of("u1")) == 100
    await auth.authenticate(issued[1].auth_value)
    await auth.authenticate(issued[-1].auth_value)
    # Another user is untouched by the first one's cap.
    other = await auth.login("u2", [])
    await auth.authenticate(other.auth_value)
