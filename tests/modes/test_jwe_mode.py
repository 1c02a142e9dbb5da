"""``token_format="jwe"`` (``AUTHSTATE_TOKEN_FORMAT=jwe``) through the library: the setting,
the JWT modes issuing and verifying encrypted tokens with the same cache, refresh, logout
and key rotation, and session mode unaffected (it has no token)."""

from __future__ import annotations

import base64
import json

import pytest

from authstate import AuthenticationError, ConfigurationError, Settings
from authstate._time import FrozenClock
from tests.modes.conftest import MakeAuth

pytestmark = pytest.mark.anyio


def header_of(token: str) -> dict[str, str]:
    segment = token.split(".")[0]
    decoded: dict[str, str] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def test_the_setting_defaults_to_jws_and_takes_jwe_from_the_environment() -> None:
    assert Settings().token_format == "jws"
    assert Settings.from_env({"AUTHSTATE_TOKEN_FORMAT": "jwe"}).token_format == "jwe"
    assert Settings(token_format=" jwe ").token_format == "jwe"
    for bad in ("JWE", "jwt", "none", ""):
        with pytest.raises(ConfigurationError, match="AUTHSTATE_TOKEN_FORMAT"):
            Settings(token_format=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
async def test_the_jwt_modes_issue_and_verify_encrypted_tokens(
    make_auth: MakeAuth, mode: str
) -> None:
    auth = await make_auth(mode, token_format="jwe")
    issued = await auth.login("u1", ["staff"])
    assert header_of(issued.auth_value)["enc"] == "A256GCM"
    principal = await auth.authenticate(issued.auth_value)
    assert principal.user_id == "u1" and principal.token is not None
    assert principal.token.kid == header_of(issued.auth_value)["kid"]
    await auth.logout(principal)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_hybrid_refresh_issues_a_new_encrypted_token(make_auth: MakeAuth) -> None:
    auth = await make_auth("hybrid", token_format="jwe")
    issued = await auth.login("u1", [])
    assert issued.refresh_value is not None
    principal = await auth.authenticate(issued.auth_value)
    renewed = await auth.refresh(issued.refresh_value, bound_to=principal)
    assert len(renewed.auth_value.split(".")) == 5
    assert (await auth.authenticate(renewed.auth_value)).user_id == "u1"


async def test_rotation_encrypts_with_the_new_key_and_still_decrypts_with_the_old(
    make_auth: MakeAuth,
) -> None:
    auth = await make_auth("stateless", token_format="jwe")
    old = await auth.login("u1", [])
    await auth.authenticate(old.auth_value)  # cached before the rotation
    new_key = await auth.context.keys.rotate()
    new = await auth.login("u1", [])
    assert header_of(new.auth_value)["kid"] == new_key.kid
    assert header_of(old.auth_value)["kid"] != new_key.kid
    assert (await auth.authenticate(old.auth_value)).user_id == "u1"
    assert (await auth.authenticate(new.auth_value)).user_id == "u1"


async def test_a_node_refuses_the_other_format(make_auth: MakeAuth, tmp_path: object) -> None:
    store = f"sqlite:///{tmp_path}/shared.db"
    encrypting = await make_auth("stateless", store=store, token_format="jwe")
    signing = await make_auth("stateless", store=store)
    jwe, jws = await encrypting.login("u1", []), await signing.login("u1", [])
    assert (await encrypting.authenticate(jwe.auth_value)).user_id == "u1"
    assert (await signing.authenticate(jws.auth_value)).user_id == "u1"
    with pytest.raises(AuthenticationError):
        await signing.authenticate(jwe.auth_value)
    with pytest.raises(AuthenticationError):
        await encrypting.authenticate(jws.auth_value)


async def test_an_expired_encrypted_token_is_refused_even_from_the_cache(
    make_auth: MakeAuth, clock: FrozenClock
) -> None:
    auth = await make_auth("stateless", token_format="jwe")
    issued = await auth.login("u1", [])
    await auth.authenticate(issued.auth_value)
    clock.advance(auth.settings.access_ttl_seconds + auth.settings.leeway_seconds + 1)
    with pytest.raises(AuthenticationError):
        await auth.authenticate(issued.auth_value)


async def test_session_mode_has_no_token_to_encrypt(make_auth: MakeAuth) -> None:
    auth = await make_auth("session", token_format="jwe")
    issued = await auth.login("u1", [])
    assert "." not in issued.auth_value and issued.principal.token is None
    assert (await auth.authenticate(issued.auth_value)).user_id == "u1"
