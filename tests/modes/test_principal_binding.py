"""A principal's CSRF binding is derived from its session handle or token, never stored apart:
the same credential gives the same binding at login and on every later request."""

from __future__ import annotations

import pytest

from authstate.modes.stateless import StatelessMode
from tests.modes.conftest import MakeAuth

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
async def test_the_binding_at_login_is_the_binding_of_every_later_request(
    make_auth: MakeAuth, mode: str
) -> None:
    auth = await make_auth(mode)
    issued = await auth.login("u1")
    later = await auth.authenticate(issued.auth_value)
    assert issued.principal.binding == later.binding != ""
    if mode == "stateless":
        assert later.token is not None and later.binding == later.token.jti
    else:
        # The session handle: the JWT's sid in hybrid mode, the record's handle in session.
        assert later.session is not None and later.binding == later.session.id
        [record] = await auth.store.list_sessions("u1")
        assert record.handle == later.binding


async def test_a_hybrid_token_seen_in_stateless_mode_stays_bound_to_its_jti(
    make_auth: MakeAuth,
) -> None:
    # Mixed modes on one store: a stateless node keeps the token's family (session) but
    # binds CSRF tokens to the token itself, as before the binding was derived.
    hybrid = await make_auth("hybrid")
    issued = await hybrid.login("u1")
    seen = StatelessMode._principal(hybrid.tokens.verify(issued.auth_value))
    assert seen.session is not None and seen.token is not None
    assert seen.binding == seen.token.jti != seen.session.id
