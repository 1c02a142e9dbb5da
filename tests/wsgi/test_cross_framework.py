"""A Django node, a Flask node (two forked gunicorn workers) and an ``authstate serve``
node on one store: a login on any is valid on all, logout-everywhere on one is enforced
on the others within the propagation bound, and CSRF holds on each.

All nodes listen on 127.0.0.1 (cookies ignore ports, so a browser would send the same
cookies to each)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.multinode.nodes import add_user
from tests.wsgi import contract
from tests.wsgi.contract import Browser
from tests.wsgi.nodes import Node, node

pytestmark = [pytest.mark.slow, pytest.mark.services]

# Settings' default max_staleness (5 s) is the bound on how long a revocation can take to
# reach another node; the test allows the bound plus a margin for a loaded machine.
BOUND_SECONDS = 5.0


@pytest.fixture(params=["redis", "postgres"])
def store(request: pytest.FixtureRequest) -> str:
    name = "redis_prefixed_url" if request.param == "redis" else "postgres_schema_url"
    url: str = request.getfixturevalue(name)
    return url


def _rejected_everywhere(nodes: list[Node], browser: Browser) -> bool:
    return all(browser.request("GET", "/auth/me", url=n.url).status_code == 401 for n in nodes)


def test_one_sign_in_across_django_flask_and_serve(tmp_path: Path, store: str) -> None:
    from tests.cli.serve_process import wait_until

    username = add_user(store, contract.PASSWORD)
    with ExitStack() as stack:
        nodes = [
            stack.enter_context(node(tmp_path, "serve", store)),
            stack.enter_context(node(tmp_path, "flask", store, workers=2, threads=4)),
            stack.enter_context(node(tmp_path, "django", store)),
        ]
        browsers = {n.kind: contract.login(n.url, username) for n in nodes}
        for origin, browser in browsers.items():
            for other in nodes:
                me = browser.request("GET", "/auth/me", url=other.url)
                assert me.status_code == 200, (origin, other.kind, me.text)
                assert me.json()["user"]["username"] == username
                # CSRF holds everywhere for a cookie from anywhere.
                refused = browser.request("POST", "/auth/logout", url=other.url)
                assert refused.status_code == 403, (origin, other.kind)
                foreign = browser.request(
                    "POST",
                    "/auth/logout",
                    url=other.url,
                    headers={"x-csrf-token": browser.csrf, "origin": contract.EVIL},
                )
                assert foreign.status_code == 403, (origin, other.kind)
        # A refresh on Flask, then the new credentials on Django and serve.
        flask_browser = browsers["flask"]
        refreshed = flask_browser.request(
            "POST", "/auth/refresh", url=nodes[1].url, headers={"x-csrf-token": flask_browser.csrf}
        )
        assert refreshed.status_code == 200
        for other in nodes:
            assert flask_browser.request("GET", "/auth/me", url=other.url).status_code == 200
        # Remember-me off at a login on serve stays off through refreshes on Flask and Django.
        brief = Browser(nodes[0].url)
        signed_in = brief.request(
            "POST",
            "/auth/login",
            json={"username": username, "password": contract.PASSWORD, "remember": False},
        )
        assert signed_in.status_code == 200, signed_in.text
        for other in nodes[1:]:
            again = brief.request(
                "POST", "/auth/refresh", url=other.url, headers={"x-csrf-token": brief.csrf}
            )
            assert again.status_code == 200, (other.kind, again.text)
            for header in again.headers.get_list("set-cookie"):
                assert "Max-Age" not in header and "Expires" not in header, (other.kind, header)
        # Session data written on serve is read on Flask and Django (one store, no cache).
        written = flask_browser.request(
            "PATCH",
            "/auth/session/data",
            url=nodes[0].url,
            json={"cart": [7]},
            headers={"x-csrf-token": flask_browser.csrf},
        )
        assert written.status_code == 200, written.text
        for other in nodes[1:]:
            read = flask_browser.request("GET", "/auth/session/data", url=other.url)
            assert read.json() == {"data": {"cart": [7]}}, other.kind
        # Logout everywhere on Django: every browser is refused on every node.
        django_browser = browsers["django"]
        held = [dict(b.jar) for b in browsers.values()]  # the logout clears one browser's jar
        answer = django_browser.request(
            "POST",
            "/auth/logout-all",
            url=nodes[2].url,
            headers={"x-csrf-token": django_browser.csrf},
        )
        assert answer.status_code == 204
        for jar in held:
            browser = Browser(nodes[0].url)
            browser.jar = jar
            assert wait_until(
                lambda b=browser: _rejected_everywhere(nodes, b), timeout=BOUND_SECONDS + 5
            ), "a node still accepts a credential after logout-everywhere"
        # A logout on serve of a fresh Flask login reaches Flask's two workers and Django.
        again = contract.login(nodes[1].url, username)
        replay = Browser(nodes[1].url)
        replay.jar = dict(again.jar)  # what the browser held before logging out
        out = again.request(
            "POST", "/auth/logout", url=nodes[0].url, headers={"x-csrf-token": again.csrf}
        )
        assert out.status_code == 204
        assert wait_until(lambda: _rejected_everywhere(nodes, replay), timeout=BOUND_SECONDS + 5)
        for _ in range(6):  # either gunicorn worker may answer: both must refuse
            assert replay.request("GET", "/auth/me", url=nodes[1].url).status_code == 401
