"""Encrypted tokens (``AUTHSTATE_TOKEN_FORMAT=jwe``) across two ``authstate serve`` nodes on
one shared store (SQLite, PostgreSQL, Redis): a token issued on one node decrypts on the
other (the content key is derived from the shared ring), and a logout, or a logout
everywhere, on one node is refused on the other within the propagation bound."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE
from tests.cli.serve_process import wait_until
from tests.multinode.nodes import Session, add_user, cluster, login, me, post

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["stateless", "hybrid"])
def test_a_jwe_issued_on_one_node_is_read_and_revoked_on_the_other(
    tmp_path: Path, shared_store: str, mode: str
) -> None:
    name = add_user(shared_store)
    with cluster(tmp_path, shared_store, mode, count=2, AUTHSTATE_TOKEN_FORMAT="jwe") as nodes:
        first, second = nodes
        session = login(first, name)
        jar = dict(pair.split("=", 1) for pair in session.cookie.split("; "))
        token = jar[AUTH_COOKIE]
        assert len(token.split(".")) == 5, "not a JWE"
        assert me(second, session) == 200
        # Logout on the first node: the second refuses the token too.
        assert post(first, "/auth/logout", session).status_code in (200, 204)
        assert wait_until(lambda: me(second, session) == 401, timeout=10)
        # Logout everywhere (the user's generation): a second login's token dies on both.
        other: Session = login(second, name)
        assert me(first, other) == 200
        assert post(second, "/auth/logout-all", other).status_code in (200, 204)
        assert wait_until(lambda: me(first, other) == 401 and me(second, other) == 401, timeout=10)
        assert httpx.get(f"{first.url}/healthz", timeout=5).status_code == 200
