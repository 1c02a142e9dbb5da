"""A stateless and a hybrid node on one store (red team I1): a hybrid access token logged
out on the stateless node ends its refresh family too, so the hybrid node refuses it."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from authstate.cookies import AUTH_COOKIE, REFRESH_COOKIE
from tests.cli.serve_process import serve, wait_until
from tests.multinode.nodes import add_user, node_env

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


def cookies_of(response: httpx.Response) -> dict[str, str]:
    """Every cookie a response sets, the ``Path=/auth`` refresh cookie included."""
    result = {}
    for header in response.headers.get_list("set-cookie"):
        name, rest = header.split("=", 1)
        result[name] = rest.split(";", 1)[0]
    return result


def refresh(url: str, token: str, csrf: str) -> httpx.Response:
    headers = {"cookie": f"{REFRESH_COOKIE}={token}", "x-csrf-token": csrf}
    return httpx.post(f"{url}/auth/refresh", headers=headers, timeout=10)


def test_a_hybrid_token_logged_out_on_a_stateless_node_ends_its_refresh_family(
    tmp_path: Path, shared_store: str
) -> None:
    """Log in on the hybrid node, log out on the stateless node: the refresh token that
    came with the login is then 401 on the hybrid node, and so is the access token."""
    name = add_user(shared_store, PASSWORD)
    with ExitStack() as stack:
        hybrid, stateless = (
            stack.enter_context(
                serve(tmp_path, "--mode", mode, "--store", shared_store, env=node_env())
            )
            for mode in ("hybrid", "stateless")
        )
        response = httpx.post(
            f"{hybrid.url}/auth/login", json={"username": name, "password": PASSWORD}, timeout=10
        )
        assert response.status_code == 200, response.text
        cookies, csrf = cookies_of(response), response.json()["csrf_token"]
        access = f"{AUTH_COOKIE}={cookies[AUTH_COOKIE]}"

        # The same browser on the stateless node: its CSRF token there is bound to the jti.
        there = httpx.get(f"{stateless.url}/auth/csrf", headers={"cookie": access}, timeout=10)
        logout = httpx.post(
            f"{stateless.url}/auth/logout",
            headers={"cookie": access, "x-csrf-token": there.json()["csrf_token"]},
            timeout=10,
        )
        assert logout.status_code == 204, logout.text

        refused = refresh(hybrid.url, cookies[REFRESH_COOKIE], csrf)
        assert refused.status_code == 401, "the refresh family outlived the logout"
        assert refused.json()["error"] == "invalid_refresh"
        # The access token dies on the hybrid node once the revocation reaches it over the
        # bus (SQLite polls every 0.2 s): within the propagation bound, not at once.
        assert wait_until(
            lambda: (
                (
                    httpx.get(f"{hybrid.url}/auth/me", headers={"cookie": access}, timeout=10)
                ).status_code
                == 401
            ),
            timeout=5,
        ), "the access token outlived the logout"


def test_a_refresh_family_survives_what_does_not_concern_it(
    tmp_path: Path, shared_store: str
) -> None:
    """The control: without the logout, the same refresh on the hybrid node is 200 (the
    test above would pass vacuously if mixed nodes could not refresh at all)."""
    name = add_user(shared_store, PASSWORD)
    with serve(tmp_path, "--mode", "hybrid", "--store", shared_store, env=node_env()) as hybrid:
        response = httpx.post(
            f"{hybrid.url}/auth/login", json={"username": name, "password": PASSWORD}, timeout=10
        )
        cookies, csrf = cookies_of(response), response.json()["csrf_token"]
        assert refresh(hybrid.url, cookies[REFRESH_COOKIE], csrf).status_code == 200
