"""Step-up, remember-me and device control on three ``authstate serve`` nodes sharing one
store, over real HTTP: what one node does, every node honours within the propagation bound."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.serve_process import Served
from tests.multinode.nodes import Session, add_user, cluster, time_until_rejected

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
FRESH_WINDOW_SECONDS = 3


@dataclass
class Browser:
    """A cookie jar that keeps every cookie (refresh included) and the CSRF token."""

    jar: dict[str, str] = field(default_factory=dict)
    csrf: str = ""
    last_set_cookies: list[str] = field(default_factory=list)

    @property
    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.jar.items())

    def session(self) -> Session:
        """A snapshot of the credentials as they are now (for ``time_until_rejected``)."""
        return Session(self.cookie, self.csrf)

    def take(self, response: httpx.Response) -> httpx.Response:
        self.last_set_cookies = response.headers.get_list("set-cookie")
        for header in self.last_set_cookies:
            name, rest = header.split("=", 1)
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in header:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
                if "csrf" in name:
                    self.csrf = value
        return response

    def login(self, node: Served, name: str, **body: Any) -> httpx.Response:
        response = httpx.post(
            f"{node.url}/auth/login",
            json={"username": name, "password": PASSWORD, **body},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return self.take(response)

    def post(self, node: Served, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"cookie": self.cookie, "x-csrf-token": self.csrf}
        return self.take(httpx.post(f"{node.url}{path}", headers=headers, timeout=10, **kwargs))

    def me(self, node: Served) -> httpx.Response:
        return httpx.get(f"{node.url}/auth/me", headers={"cookie": self.cookie}, timeout=5)


def lifetime_attributes(set_cookies: list[str]) -> list[str]:
    """The Set-Cookie headers (other than deletions) that give the cookie a lifetime."""
    return [h for h in set_cookies if "max-age=" in h.lower() or "expires=" in h.lower()]


@pytest.mark.parametrize("mode", ["stateless", "session", "hybrid"])
def test_step_up_remember_me_and_devices_across_three_nodes(
    tmp_path: Path, shared_store: str, mode: str
) -> None:
    name = add_user(shared_store)
    env = {
        "AUTHSTATE_FRESH_WINDOW": f"{FRESH_WINDOW_SECONDS}s",
        "AUTHSTATE_MAX_SESSIONS_PER_USER": "3",
    }
    with cluster(tmp_path, shared_store, mode, **env) as nodes:
        a, b, c = nodes
        # Remember-me off: every cookie of the real server's answer is a session cookie.
        caller, phone, laptop = Browser(), Browser(), Browser()
        caller.login(a, name, remember=False)
        assert caller.last_set_cookies and lifetime_attributes(caller.last_set_cookies) == []
        phone.login(b, name)
        assert len(lifetime_attributes(phone.last_set_cookies)) == len(phone.last_set_cookies)
        laptop.login(c, name)
        first_check = caller.me(b).json()["auth_time"]
        assert isinstance(first_check, int)

        # Stale: no node lets the caller sign the other devices out.
        time.sleep(FRESH_WINDOW_SECONDS + 1.5)
        for node in nodes:
            refused = caller.post(node, "/auth/sessions/revoke-others")
            assert refused.status_code == 401 and refused.json()["error"] == "reauth_required"
        assert [phone.me(n).status_code for n in nodes] == [200, 200, 200]

        # Reauth on A: fresh on B and C, the old credential refused on every node.
        before_reauth = caller.session()
        reauth = caller.post(a, "/auth/reauth", json={"password": PASSWORD})
        assert reauth.status_code == 200, reauth.text
        assert lifetime_attributes(caller.last_set_cookies) == []  # still not remembered
        for node in (b, c):
            me = caller.me(node)
            assert me.status_code == 200 and me.json()["auth_time"] > first_check
        time_until_rejected(nodes, before_reauth, timeout=6.0)

        # Revoke-others on C: only the caller's session is left, on every node.
        assert caller.post(c, "/auth/sessions/revoke-others").status_code == 204
        time_until_rejected(nodes, phone.session(), timeout=6.0)
        time_until_rejected(nodes, laptop.session(), timeout=6.0)
        assert [caller.me(n).status_code for n in nodes] == [200, 200, 200]
        if mode != "stateless":
            listing = httpx.get(
                f"{b.url}/auth/sessions", headers={"cookie": caller.cookie}, timeout=5
            ).json()["sessions"]
            assert [s["current"] for s in listing] == [True]

        if mode == "hybrid":  # a rotation on another node keeps the session-cookie kind
            assert caller.post(b, "/auth/refresh").status_code == 200
            assert lifetime_attributes(caller.last_set_cookies) == []

        # The cap (3): three more logins evict the oldest session, the caller's, everywhere.
        if mode != "stateless":
            later = [Browser() for _ in range(3)]
            for browser, node in zip(later, nodes, strict=True):
                browser.login(node, name)
            time_until_rejected(nodes, caller.session(), timeout=6.0)
            assert [later[0].me(n).status_code for n in nodes] == [200, 200, 200]
